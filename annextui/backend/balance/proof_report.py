"""A proof (proof.py) as text and as JSON: what ``annextui balance --prove`` and a rebalance's
``--dry-run`` print. Names come from the git-annex branch and are printed as they are, never
interpreted."""

from __future__ import annotations

from annextui.backend.balance.proof import Proof
from annextui.backend.units import format_rough

__all__ = ["proof_json", "proof_text"]

_SHOWN_KEYS = 20  # keys listed in the text form; JSON lists them all


def proof_text(proof: Proof) -> list[str]:
    """The verdict, one line per round, and for a cycle the keys and the deciding terms."""
    names = proof.final.name
    moving = proof.moving_rounds
    if proof.converged:
        head = f"converges: a fixed point after {moving} round{'s' if moving != 1 else ''} of moves"
    elif proof.oscillation is not None:
        osc = proof.oscillation
        since = "the starting state" if osc.start == 0 else f"the state after round {osc.start}"
        head = (
            f"does not converge: {len(osc.keys)} key{'s' if len(osc.keys) != 1 else ''} move "
            f"back and forth ({since} comes back every {osc.period} rounds)"
        )
    else:
        head = f"does not converge within {proof.max_rounds} rounds (round limit reached)"
    lines = [head]
    for r in proof.rounds:
        label = "plan" if r.number == 0 else f"round {r.number}"
        lines.append(
            f"  {label}: {r.gets} get{'s' if r.gets != 1 else ''}, "
            f"{r.drops} drop{'s' if r.drops != 1 else ''}, {format_rough(r.bytes_moved, 2)} moved"
        )
    o = proof.oscillation
    if o is not None:
        if o.terms:
            lines.append("caused by: " + ", ".join(o.terms))
        lines.append("oscillating keys:")
        for key in o.keys[:_SHOWN_KEYS]:
            lines.append(f"  {key}")
            for d in o.decisions:
                if d.key == key:
                    lines.append(f"    {names(d.repo)} {d.action}s it: {d.expression}")
        if len(o.keys) > _SHOWN_KEYS:
            lines.append(f"  ... and {len(o.keys) - _SHOWN_KEYS} more (--json lists them all)")
    return lines


def proof_json(proof: Proof) -> dict[str, object]:
    names = proof.final.name
    o = proof.oscillation
    return {
        "converged": proof.converged,
        "rounds": proof.moving_rounds,
        "max-rounds": proof.max_rounds,
        "round-limit-reached": not proof.converged and o is None,
        "steps": [
            {"round": r.number, "gets": r.gets, "drops": r.drops, "bytes": r.bytes_moved}
            for r in proof.rounds
        ],
        "oscillation": None
        if o is None
        else {
            "start": o.start,
            "period": o.period,
            "keys": list(o.keys),
            "terms": list(o.terms),
            "decisions": [
                {
                    "key": d.key,
                    "repo": d.repo,
                    "name": names(d.repo),
                    "action": d.action,
                    "term": d.term,
                    "expression": d.expression,
                    "reason": d.reason,
                }
                for d in o.decisions
            ],
        },
        "final": _final(proof),
    }


def _final(proof: Proof) -> dict[str, dict[str, object]]:
    """Per member: the keys and bytes of the model it holds at the end."""
    final = proof.final
    out: dict[str, dict[str, object]] = {}
    for u in final.members:
        held = [mk.size for mk, h in zip(final.keys, final.holders, strict=True) if u in h]
        out[u] = {"name": final.name(u), "keys": len(held), "bytes": sum(held)}
    return out
