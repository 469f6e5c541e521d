"""Weight-sharing (one-shot) search: a supernet per space, SPOS training, scoring subnets with inherited weights.

See :mod:`nas.oneshot.rules` for the protocol a builder implements to offer a supernet.
"""

from nas.oneshot import builtin  # noqa: F401  (registers the built-in sharing rules)
from nas.oneshot.rules import SharingRule, SliceRule, has_supernet, register_sharing, sharing_rule
from nas.oneshot.supernet import Supernet, slice_slot

__all__ = ["SharingRule", "SliceRule", "Supernet", "has_supernet", "register_sharing", "sharing_rule", "slice_slot"]
