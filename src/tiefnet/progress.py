"""The progress bar of long work: tqdm on stderr, or None where progress is switched off (``--no-progress``)."""
from __future__ import annotations


def progress_bar(enabled: bool, total: int, desc: str, unit: str = "step", initial: int = 0):
    """A tqdm bar of ``total`` units (``initial`` of them done already: a resumed run), or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=unit, unit_scale=True, dynamic_ncols=True, desc=desc,
                mininterval=0.5)
