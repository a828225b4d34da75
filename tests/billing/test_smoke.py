from billing.ledger.selectors import balance_get


def test_alice_starts_with_her_gift(alice):
    balance = balance_get(account=alice.account)
    assert (balance.topup_nanos, balance.bonus_nanos, balance.held_nanos) == (
        0,
        50_000_000_000,
        0,
    )
