"""Ids: Conekta's shapes, time order where it helps the indexes, randomness where an id grants access."""

from __future__ import annotations

import re
import time

from caja.domain import ids

BASE58_ID = re.compile(r"^cus_2[1-9A-HJ-NP-Za-km-z]{16}$")


def test_ordered_ids_have_conektas_shape_and_sort_by_the_millisecond_they_were_made() -> None:
    made = []
    for _ in range(5):
        made.append(ids.new_ordered_id(ids.CUSTOMER))
        time.sleep(0.002)
    assert all(BASE58_ID.match(i) for i in made)
    assert made == sorted(made)
    assert len({i[:12] for i in made}) == 5  # the millisecond part moved each time


def test_ordered_ids_of_the_same_millisecond_differ_by_their_random_part() -> None:
    burst = [ids.new_ordered_id(ids.CUSTOMER) for _ in range(2000)]
    assert len(set(burst)) == 2000
    assert len({i[12:] for i in burst}) == 2000


def test_hex_ids_are_object_ids_whose_first_four_bytes_are_the_second() -> None:
    before = int(time.time())
    made = ids.new_hex_id()
    after = int(time.time())
    assert re.fullmatch(r"[0-9a-f]{24}", made)
    assert before <= int(made[:8], 16) <= after
    assert int(made[8:12], 16) < 1000  # the millisecond within that second
    time.sleep(0.002)
    assert ids.new_hex_id() > made
    assert len({ids.new_hex_id() for _ in range(2000)}) == 2000


def test_an_id_that_opens_a_slip_tells_nothing_of_its_time() -> None:
    # /slips/{source_id} needs no credentials: its id stays wholly random, not time-ordered.
    made = [ids.new_id(ids.PAYMENT_SOURCE)[len(ids.PAYMENT_SOURCE) + 1 :] for _ in range(200)]
    assert len({i[:3] for i in made}) > 150  # ids made within a second in time order would share these
