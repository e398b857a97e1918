"""In-process services on both databases with a real approval endpoint: the delivery suite's world."""

from tests.delivery.conftest import (  # noqa: F401 (fixtures used by this package's tests)
    World,
    database,
    delivery_postgres_url,
    receiver,
    uow,
    world,
)
