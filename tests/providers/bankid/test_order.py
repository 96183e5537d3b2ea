"""The pacing of `/collect` (RP API §3: not more often than every two seconds), judged by the
clock the provider is handed, on the real stores: however many polls arrive at once on however
many instances, one of them collects."""

from __future__ import annotations

import asyncio

from gateway.settings import StoreSettings
from gateway.store import open_store
from providers.bankid.order import COLLECT_INTERVAL_SECONDS, BankIDOrder, Orders
from providers.base import NamespacedStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def claims(instances: list[Orders], login_id: str) -> int:
    """How many of ten concurrent polls on each instance were allowed to collect."""
    polls = [orders.claim_collect(login_id) for orders in instances for _ in range(10)]
    return sum(await asyncio.gather(*polls))


async def paced_claims(store_url: str | None) -> list[int]:
    settings = StoreSettings(url=store_url) if store_url else None
    clock = Clock()
    async with open_store(settings) as store:
        shared = NamespacedStore(store, "p:bankid:")
        instances = [Orders("bankid", shared, clock) for _ in range(3)]
        counted = [await claims(instances, "login-1")]
        clock.now += COLLECT_INTERVAL_SECONDS - 0.01
        counted.append(await claims(instances, "login-1"))
        clock.now += 0.01
        counted.append(await claims(instances, "login-1"))
        counted.append(await claims(instances, "login-2"))  # another order has its own pace
        return counted


def test_one_collect_per_interval_of_the_clock_whatever_the_concurrency(
    store_url: str | None,
) -> None:
    assert asyncio.run(paced_claims(store_url)) == [1, 0, 1, 1]


def test_an_order_recorded_before_signing_existed_is_a_login() -> None:
    """Records in the store when this version starts (their TTL is ten minutes) still load."""
    old = (
        b'{"order_ref":"r","qr_start_token":"q","qr_start_secret":"s","auto_start_token":"a",'
        b'"started_at":1.0,"browser_token":"b","end_user_ip":"192.0.2.1","client_id":"basic",'
        b'"locale":"sv","loa":"loa3","mobile":false,"return_nonce":"n","status":"complete",'
        b'"completion":{"user":{"personalNumber":"199908072391"}}}'
    )
    order = BankIDOrder.loads(old)
    assert not order.signs
    assert (order.sign_request, order.completed_at) == (None, None)
