"""Names read from a file, as text.

protobuf (upb) hands back a string field holding invalid UTF-8 as ``bytes``. Such a name must stay
usable as a key and visible when printed, so it becomes valid ``str`` with each bad byte written as the
four characters ``\\xNN`` (``backslashreplace``), once, here: no lone surrogate reaches a renderer, the
JSON, onnx's C++ (``has_schema``) or an encoder that would raise on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import cache
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from onnxaudit.model.view import ModelView


# What no output may hold raw: C0 and C1 controls, DEL, and the characters that reorder, hide or break lines in a
# terminal, an editor or a review (bidi marks, overrides and isolates, zero-width characters, line separators, BOM)
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def as_text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def key(scope: str | bytes, name: str | bytes) -> tuple[str, str]:
    """A (scope, name) key that is the same whether the name arrived as str or bytes."""
    return (as_text(scope), as_text(name))


def quoted(name: str | bytes) -> str:
    """'name' for a message; the renderer escapes whatever the name holds."""
    return f"'{as_text(name)}'"


def nodes_as_text(data: bytes | bytearray | memoryview) -> bool:
    """Whether every name protobuf gives of the nodes in `data` (a GraphProto's node fields) arrives as str: their
    names, op types, domains, inputs, outputs and attribute names all valid UTF-8. onnx's messages are proto2, whose
    strings upb checks only when one is read (bytes when invalid); the same fields declared in a proto3 message are
    checked as they are parsed (_TextNodes). One parse in C (27 ms at 200k nodes) spares text_names' look at each
    name (95 ms). False for any failure: text_names then looks at them as before."""
    from google.protobuf.message import DecodeError

    try:
        _text_nodes().FromString(data)  # type: ignore[arg-type]  # any buffer parses; the stub says bytes
    except (DecodeError, ValueError, RecursionError):
        return False
    return True


@cache
def _text_nodes() -> type[Message]:
    """_TextNodes: onnx's GraphProto.node with only the string fields the view reads, as proto3 (io/onnxcore's
    numbers: NodeProto input 1, output 2, name 3, op_type 4, attribute 5, domain 7; AttributeProto name 1)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    string, message, optional, repeated = (
        descriptor_pb2.FieldDescriptorProto.TYPE_STRING, descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
    )  # fmt: skip
    file = descriptor_pb2.FileDescriptorProto(name="onnxaudit_text.proto", package="onnxaudit_text", syntax="proto3")
    file.message_type.add(name="Attribute").field.add(name="name", number=1, type=string, label=optional)
    node = file.message_type.add(name="Node")
    for name, number, label in (("input", 1, repeated), ("output", 2, repeated), ("name", 3, optional),
                                ("op_type", 4, optional), ("domain", 7, optional)):  # fmt: skip
        node.field.add(name=name, number=number, type=string, label=label)
    node.field.add(name="attribute", number=5, type=message, label=repeated, type_name=".onnxaudit_text.Attribute")
    nodes = file.message_type.add(name="TextNodes")
    nodes.field.add(name="node", number=1, type=message, label=repeated, type_name=".onnxaudit_text.Node")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("onnxaudit_text.TextNodes"))


def _string_groups(view: ModelView, main_known: int = 0) -> Iterator[Iterable[Iterable[object]]]:
    """Every name of the view, as iterables of iterables of names (few passes, each in C); the first `main_known`
    nodes of the main graph left out."""
    for scope, graph in view.graphs.items():
        nodes = graph.nodes[main_known:] if main_known and scope == "main" else graph.nodes  # "main": view.MAIN
        yield map(attrgetter("name", "op_type", "domain"), nodes)
        yield chain.from_iterable(map(attrgetter("inputs", "outputs", "attrs"), nodes))
        yield (graph.tensors, map(attrgetter("name"), graph.inputs), graph.outputs)
    yield view.functions  # (domain, name) keys
    yield (view.value_shapes,)


def text_names(view: ModelView, main_known: int = 0) -> ModelView:
    """`view` (a model.view.ModelView) with every name as str. A file without invalid UTF-8 costs one pass
    of type checks in C; only a file with some is rebuilt. `main_known`: how many of the main graph's first nodes
    are known to hold no bytes (nodes_as_text), not looked at again."""
    if bytes not in set(map(type, chain.from_iterable(chain.from_iterable(_string_groups(view, main_known))))):
        return view
    for graph in view.graphs.values():
        graph.nodes = [
            replace(
                n, name=as_text(n.name), op_type=as_text(n.op_type), domain=as_text(n.domain),
                inputs=tuple(map(as_text, n.inputs)), outputs=tuple(map(as_text, n.outputs)),
                attrs={as_text(k): v for k, v in n.attrs.items()},
            )
            for n in graph.nodes
        ]  # fmt: skip
        graph.tensors = {as_text(k): replace(t, name=as_text(t.name)) for k, t in graph.tensors.items()}
        graph.inputs = [replace(v, name=as_text(v.name), shape=_shape(v.shape)) for v in graph.inputs]
        graph.outputs = [as_text(o) for o in graph.outputs]
    view.functions = {(as_text(d), as_text(n)): scope for (d, n), scope in view.functions.items()}
    view.value_shapes = {
        as_text(k): replace(v, name=as_text(v.name), shape=_shape(v.shape)) for k, v in view.value_shapes.items()
    }
    return view


def _shape(shape: tuple[int | str | bytes | None, ...] | None) -> tuple[int | str | None, ...] | None:
    # a dim_param protobuf could not decode arrives as bytes, whatever ValueInfo.shape declares
    return None if shape is None else tuple(as_text(d) if isinstance(d, bytes) else d for d in shape)
