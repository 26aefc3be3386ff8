"""The request mix both load generators send (bench_decide.py and the locustfile)."""

CONTEXTS = [
    {"device": "ios"},
    {"device": "android", "channel_pref": "push"},
    {"device": "desktop", "cart_abandoned_7d": True},
    {"region": "south", "sessions_30d": 12},
    {"channel_pref": "email", "email_open_rate": 0.4},
]
# Every list holds an action without eligibility rules, so none is answered with 422.
CANDIDATES = [
    ["no_action", "email_10"],
    ["email_10", "email_20", "free_shipping"],
    ["no_action", "email_10", "email_20", "free_shipping", "push_reminder"],
    ["free_shipping", "push_reminder", "no_action"],
]
