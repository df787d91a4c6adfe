"""The int8 convolutions as signed-weight matrix products, where the CPU has VNNI
(a graph edit, part of ``kernels="fast"``).

onnxruntime's dynamic quantisation writes every convolution of the export as
``ConvInteger(xq, Wq, xz, Wz)`` with *unsigned* weights (uint8, zero point
``Wz``). onnxruntime's CPU ``ConvInteger`` exists only for uint8 × uint8, and
MLAS's uint8 × uint8 matrix kernels widen to 16 bits; its uint8 × int8 kernels
use VNNI's ``vpdpbusd`` instead. On the 2-core AMD EPYC with AVX-512 VNNI we
measured a (256 × 256, kernel 7, dilation 3) convolution over 1,200 steps at
4.0 ms as ``ConvInteger`` against 1.8 ms as the product below, transposes
included (bench/conv_gemm.py).

**The edit.** For a stride-1, ungrouped ``ConvInteger`` with "same" padding
(``2·pad = dilation·(kernel − 1)``), constant weights ``W[o, c, k]`` and one
weight zero point, with ``x`` of shape [1, C, T]:

    xt = Transpose(Squeeze(xq))               [T, C]      (uint8: one byte each)
    xp = Pad(xt, pad rows, value xz)          [T + 2·pad, C]
    xc = Gather(xp, rows t + k·d)             [T, K, C] viewed as [T, K·C]  (im2col)
    y  = MatMulInteger(xc, W', xz, Wz − 128)  [T, O]      int32
    out = Unsqueeze(Transpose(y))             [1, O, T]   ConvInteger's output

with ``W'[k·C + c, o] = W[o, c, k] − 128`` as int8. ``(W − Wz)`` equals
``(W − 128) − (Wz − 128)`` exactly, padding with ``xz`` is a real zero as in
``ConvInteger``, and the int32 sums are the same integers in another order, so
the output is **bit-identical** to ``ConvInteger``'s: the audio does not change.

**Only with VNNI.** Without it MLAS multiplies uint8 × int8 with
``vpmaddubsw`` (its AVX2 and AVX-512 core kernels), which saturates pairs of
products at 16 bits: full-range weights would then give wrong sums. So
``onnx_graph.prepare_model`` applies the edit only when the CPU reports
``avx512_vnni`` or ``avx_vnni`` (``has_vnni``); the optimised
graph is cached per CPU flags (``onnx_graph.graph_key``), so a graph edited on
one CPU is never loaded on another.

**Every one that matches** (84 of the export's 87; the other three have
strides). bench/conv_gemm.py, on the 2-core AMD EPYC with AVX-512 VNNI, 2
threads (bench/results/conv-gemm-20261207T2130.txt): single convolutions of the
generator's shapes took ×0.40–0.79 of ``ConvInteger``'s time (the least gain
on 128 channels with kernel 3), and the whole engine ×0.60–0.61 of the CPU on
the bench's first chunks, ×0.68 on 12 words and ×0.77 on 40, with the audio
bit-identical on all 24 chunks. An earlier form that built the columns from K
``Slice``s and a ``Concat`` was slower (×0.61–0.76 against ×0.59–0.72 for the
``Gather``, in one run) and held every tap twice in memory.

**Memory.** The daemon's peak RSS over 18 requests of the first-audio bench's
paragraphs (chunks up to 89 characters) was 525 MB against 490 MB without the
edit, its idle RSS 351 against 345 MB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

VNNI_FLAGS = ("avx512_vnni", "avx_vnni")


def has_vnni(isa: str) -> bool:
    """Whether ``onnx_graph.cpu_isa()``'s flags include a VNNI extension."""
    flags = set(isa.split("+"))
    return any(f in flags for f in VNNI_FLAGS)


def signed_weights(w: np.ndarray) -> np.ndarray:
    """uint8 W[o, c, k] as the int8 matrix W'[k·C + c, o] = W[o, c, k] − 128."""
    o, c, k = w.shape
    shifted = (w.astype(np.int16) - 128).astype(np.int8)
    return np.ascontiguousarray(shifted.transpose(2, 1, 0).reshape(k * c, o))


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def rewrite_convs(model: Any) -> int:
    """Edit an ``onnx.ModelProto`` in place: every ``ConvInteger`` that matches
    the module docstring's conditions becomes the matrix product. Returns how
    many were rewritten; the caller decides whether the CPU has VNNI."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_inits: list[Any] = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "conv_gemm_axis0"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "conv_gemm_axis1"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "conv_gemm_zero"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "conv_gemm_one"),
    ]
    replaced: dict[int, list[Any]] = {}
    nodes = list(graph.node)  # held, so the ids below stay unique
    for node in nodes:
        if node.op_type != "ConvInteger" or len(node.input) != 4 or node.input[1] not in inits:
            continue
        w_init, wz_init = inits[node.input[1]], inits.get(node.input[3])
        if w_init.data_type != TensorProto.UINT8 or wz_init is None or wz_init.data_type != TensorProto.UINT8:
            continue
        wz = numpy_helper.to_array(wz_init)
        w = numpy_helper.to_array(w_init)
        if wz.size != 1 or w.ndim != 3:
            continue
        a = _attrs(node)
        _, channels, kernel = w.shape  # [out, in, kernel]
        dil = (a.get("dilations") or [1])[0]
        pads = a.get("pads") or [0, 0]
        if (a.get("group", 1) != 1 or list(a.get("strides") or [1]) != [1] or a.get("auto_pad", b"NOTSET") not in
                (b"NOTSET", "NOTSET") or len(pads) != 2 or pads[0] != pads[1] or 2 * pads[0] != dil * (kernel - 1)
                or list(a.get("kernel_shape") or [kernel]) != [kernel]):
            continue
        p = node.output[0] + "_gemm"
        w_name, wz_name = f"{p}_w", f"{p}_wz"
        new_inits.append(numpy_helper.from_array(signed_weights(w), w_name))
        new_inits.append(numpy_helper.from_array(np.array(int(wz.reshape(-1)[0]) - 128, dtype=np.int8), wz_name))
        x, xz = node.input[0], node.input[2]
        chain = [
            helper.make_node("Squeeze", [x, "conv_gemm_axis0"], [f"{p}_xs"], name=f"{p}_xs"),
            helper.make_node("Transpose", [f"{p}_xs"], [f"{p}_xt"], perm=[1, 0], name=f"{p}_xt"),
        ]
        columns = f"{p}_xt"
        if kernel > 1:
            pad = pads[0]
            pads_name = f"{p}_pads"
            new_inits.append(numpy_helper.from_array(np.array([pad, 0, pad, 0], dtype=np.int64), pads_name))
            chain.append(helper.make_node("Pad", [f"{p}_xt", pads_name, xz], [f"{p}_xp"], mode="constant",
                                          name=f"{p}_xp"))
            # One Gather of the padded rows at t + k·d for every (t, k):
            # [T, K, C] read straight into place, then viewed as [T, K·C].
            offsets = f"{p}_offsets"
            new_inits.append(numpy_helper.from_array(
                (np.arange(kernel, dtype=np.int64) * dil).reshape(1, kernel), offsets))
            new_inits.append(numpy_helper.from_array(np.array([-1, kernel * channels], dtype=np.int64),
                                                     f"{p}_cols"))
            chain += [
                helper.make_node("Shape", [f"{p}_xt"], [f"{p}_shape"], start=0, end=1, name=f"{p}_shape"),
                helper.make_node("Squeeze", [f"{p}_shape", "conv_gemm_axis0"], [f"{p}_t"], name=f"{p}_t"),
                helper.make_node("Range", ["conv_gemm_zero", f"{p}_t", "conv_gemm_one"], [f"{p}_steps"],
                                 name=f"{p}_steps"),
                helper.make_node("Unsqueeze", [f"{p}_steps", "conv_gemm_axis1"], [f"{p}_rows"], name=f"{p}_rows"),
                helper.make_node("Add", [f"{p}_rows", offsets], [f"{p}_idx"], name=f"{p}_idx"),
                helper.make_node("Gather", [f"{p}_xp", f"{p}_idx"], [f"{p}_xg"], axis=0, name=f"{p}_xg"),
                helper.make_node("Reshape", [f"{p}_xg", f"{p}_cols"], [f"{p}_xc"], name=f"{p}_xc"),
            ]
            columns = f"{p}_xc"
        chain += [
            helper.make_node("MatMulInteger", [columns, w_name, xz, wz_name], [f"{p}_y"], name=f"{p}_y"),
            helper.make_node("Transpose", [f"{p}_y"], [f"{p}_yt"], perm=[1, 0], name=f"{p}_yt"),
            helper.make_node("Unsqueeze", [f"{p}_yt", "conv_gemm_axis0"], [node.output[0]], name=f"{p}_out"),
        ]
        replaced[id(node)] = chain
    if not replaced:
        return 0
    used = {name for chain in replaced.values() for n in chain for name in n.input}
    edited: list[Any] = []
    for node in nodes:
        edited.extend(replaced.get(id(node), [node]))
    del graph.node[:]
    graph.node.extend(edited)
    graph.initializer.extend(i for i in new_inits if i.name in used)
    return len(replaced)
