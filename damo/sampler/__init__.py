"""The BPF page sampler: per sampling address, present / young / leaf size, and clearing."""

from damo.sampler.page_sampler import PageSampler, PageStates, TargetGone

__all__ = ["PageSampler", "PageStates", "TargetGone"]
