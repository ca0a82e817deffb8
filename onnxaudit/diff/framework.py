"""The framework views of two files, layer by layer: each file's Keras layers or PyTorch modules as
the framework view rebuilt them through exporter rewrites, paired by name, then by kind and counts,
then by kind and counts that overlap, then by kind alone (in order: a BN folded into a conv is the BN it was)."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from onnxaudit.diff.names import layer_key
from onnxaudit.diff.result import FigureDelta, FrameworkLayerDiff
from onnxaudit.frameworks.figures import Figure, FrameworkLayer, FrameworkReport


def overlap(a: Figure, b: Figure) -> bool:
    """Equal, or ranges that share a value: no difference the files can show."""
    return (b.hi is None or a.lo <= b.hi) and (a.hi is None or b.lo <= a.hi)


def _delta(old: Figure | None, new: Figure | None) -> FigureDelta:
    agree = old is not None and new is not None and overlap(old, new)
    return FigureDelta(old, new, agree)


def framework_layers(old: FrameworkReport | None, new: FrameworkReport | None) -> list[FrameworkLayerDiff]:
    """Every layer of both views once, in OLD's order with NEW's unpaired layers at the end."""
    olds = old.layers if old else []
    news = new.layers if new else []
    free = dict(enumerate(news))
    paired: dict[int, int] = {}

    def take(key: Callable[[int, bool], Hashable | None], fits: Callable[[int, int], bool] = lambda i, j: True) -> None:
        waiting: dict[Hashable, list[int]] = {}
        for j in free:
            k = key(j, False)
            if k is not None:
                waiting.setdefault(k, []).append(j)
        for i in range(len(olds)):
            k = key(i, True)
            if i in paired or k is None:
                continue
            found = next((j for j in waiting.get(k, ()) if j in free and fits(i, j)), None)
            if found is not None:
                paired[i] = found
                del free[found]

    def named(i: int, is_old: bool) -> Hashable | None:
        return layer_key((olds if is_old else news)[i].name)

    def shaped(i: int, is_old: bool) -> Hashable | None:
        layer = (olds if is_old else news)[i]
        return (_kind(layer.kind), layer.trainable, layer.non_trainable)

    def kind(i: int, is_old: bool) -> Hashable | None:
        return _kind((olds if is_old else news)[i].kind)

    take(named)
    take(shaped)
    take(kind, lambda i, j: overlap(olds[i].total, news[j].total))
    take(kind)
    rows = [_row(olds[i], news[paired[i]] if i in paired else None) for i in range(len(olds))]
    return rows + [_row(None, news[j]) for j in sorted(free)]


def _kind(kind: str) -> str:
    """BatchNormalization and a folded BN's BatchNorm are one kind."""
    return kind.casefold().replace("normalization", "norm")


def _row(a: FrameworkLayer | None, b: FrameworkLayer | None) -> FrameworkLayerDiff:
    total, trainable, non_trainable = (
        _delta(a.total if a else None, b.total if b else None),
        _delta(a.trainable if a else None, b.trainable if b else None),
        _delta(a.non_trainable if a else None, b.non_trainable if b else None),
    )
    return FrameworkLayerDiff(
        a.name if a else None, b.name if b else None, a.kind if a else None, b.kind if b else None,
        total, trainable, non_trainable, a.status if a else None, b.status if b else None,
        total.agree and trainable.agree and non_trainable.agree,
    )  # fmt: skip
