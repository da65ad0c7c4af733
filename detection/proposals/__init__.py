"""Region proposal methods, one file each (selective search, sliding windows, a Faster R-CNN's RPN); the
PROPOSERS registry imports them when first read. Use `build_proposer(ProposalConfig(...))`.
"""
from detection.proposals.base import PROPOSERS, ProposalConfig, Proposer, build_proposer


def list_proposers() -> list[str]:
    return PROPOSERS.names()


__all__ = ["PROPOSERS", "ProposalConfig", "Proposer", "build_proposer", "list_proposers"]
