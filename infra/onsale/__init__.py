"""The main job: a real stadium on-sale against the running system, with a report.

``ticketing onsale`` starts what is not running, creates a stadium (reserved
stands and a GA floor), lets a spike of simulated visitors (humans and bots)
through the waiting room, the holds, the checkout and the simulated payment
provider over HTTP, settles the payments, and reports from the event log, the
provider's records and what the visitors saw: ``plan`` (the sale's shape),
``visitors``/``humans``/``bots``/``crowd`` (the load), ``sale_log`` and
``report``/``text``/``chart`` (the figures), ``job`` (all of it).

Only ``plan`` is imported with the package (the command line reads its flags);
``run`` and ``run_sale`` load ``job`` and the rest when first asked for.
"""

from typing import Any

from infra.onsale.plan import OnsalePlan, ProviderKnobs, plan_from_args

__all__ = ["OnsalePlan", "ProviderKnobs", "plan_from_args", "run", "run_sale"]


def __getattr__(name: str) -> Any:
    if name in ("run", "run_sale", "SaleRun"):
        import importlib

        return getattr(importlib.import_module("infra.onsale.job"), name)
    raise AttributeError(name)
