"""Instance norms that still count the silence a trimmed run did not decode.

Kokoro's decoder and generator normalise by mean and variance over *time*
(AdaIN: 54 instance norms after the decoder cut). Drop the edge silence and
every norm sees less of it: the variance grows and the speech comes out
quieter (bench/trim_silence.py: -2 to -3.7 dB on "Sure." at K=4..8). So the
back part's norms take *weighted* moments instead, ``ReduceMean(x * w)`` with
``mean(w) == 1``: the outermost decoded frames stand for the dropped frames
beyond them (the same pad token's features, so much the same activations).
With all weights 1 the graph computes the original norms.

The graph edit works on names in the graph it is given (no fixed tensor names):
an instance norm is ``m = ReduceMean(x)``, ``d = x - m``, ``v = ReduceMean(d*d)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from kokorod.engine.trim import CUTS, TrimPlan

Rate = tuple[int, int]  # a norm's time length is a * frames + b
# The dropped frames are deep silence, far from the speech: the decoded frames
# most like them are the outermost ones. Spread over the 2 outermost frames,
# the speech level of "Sure." at K=8 came within 0.11 dB of the full decode
# (-1.74 dB unweighted, -0.96 dB spread over all 8 context frames).
OUTER_FRAMES = 2
WEIGHT_PREFIX = "/trim/norm_weights_"


def weight_input(rate: Rate) -> str:
    return f"{WEIGHT_PREFIX}{rate[0]}x{rate[1]}"


def rates_of(input_names: list[str]) -> list[Rate]:
    """The rates of a weighted graph, from its input names (``weight_input``)."""
    rates = []
    for name in input_names:
        if name.startswith(WEIGHT_PREFIX):
            a, _, b = name[len(WEIGHT_PREFIX):].partition("x")
            rates.append((int(a), int(b)))
    return rates


def _norm_means(graph: Any) -> list[tuple[Any, Any]]:
    """(mean node, variance node) of every instance norm, each once."""
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    found: list[tuple[Any, Any]] = []
    for mean in graph.node:
        if mean.op_type != "ReduceMean":
            continue
        for sub in users.get(mean.output[0], []):
            if sub.op_type != "Sub" or list(sub.input) != [mean.input[0], mean.output[0]]:
                continue
            for sq in users.get(sub.output[0], []):
                if sq.op_type == "Mul" and list(sq.input) == [sub.output[0]] * 2:
                    var = next((v for v in users.get(sq.output[0], []) if v.op_type == "ReduceMean"), None)
                    if var is not None and all(var is not f[1] for f in found):
                        found.append((mean, var))
    return found


def norm_rates(back: Any, cut: str) -> list[Rate]:
    """Each norm's (a, b), found by running an unoptimised copy of ``back`` that
    outputs the norms' input lengths at 4 and 6 frames."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.ModelProto()
    model.CopyFrom(back)
    norms = _norm_means(model.graph)
    del model.graph.output[:]
    for i, (mean, _var) in enumerate(norms):
        name = f"/trim/len{i}"
        model.graph.node.append(helper.make_node("Shape", [mean.input[0]], [name], start=-1))
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.INT64, [1]))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    shapes = {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in back.graph.input}

    def lengths(frames: int) -> list[int]:
        feed = {"style": np.zeros((1, 256), np.float32)}
        for name, (per_frame, extra) in CUTS[cut].items():
            shape = shapes[name][:-1] + [per_frame * frames + extra]
            feed[name] = np.zeros(shape, np.float32)
        return [int(x[0]) for x in session.run(None, feed)]

    four, six = lengths(4), lengths(6)
    return [((l6 - l4) // 2, l4 - 4 * ((l6 - l4) // 2)) for l4, l6 in zip(four, six)]


def weigh_norms(back: Any, rates: list[Rate]) -> None:
    """Edit ``back`` in place: every norm's two ReduceMeans take ``x * w``, with
    ``w`` a new graph input per rate (shape (1, 1, a*frames + b))."""
    from onnx import TensorProto, helper

    graph = back.graph
    norms = _norm_means(graph)
    if len(norms) != len(rates):
        raise ValueError(f"{len(norms)} norms but {len(rates)} rates")
    rate_of = {id(node): rate for (mean, var), rate in zip(norms, rates) for node in (mean, var)}
    nodes = []
    for node in graph.node:
        rate = rate_of.get(id(node))
        if rate is not None:
            x = node.input[0]
            weighted = f"{node.output[0]}/trim_weighted"
            nodes.append(helper.make_node("Mul", [x, weight_input(rate)], [weighted], name=weighted))
            node.input[0] = weighted
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.input.extend(helper.make_tensor_value_info(weight_input(r), TensorProto.FLOAT, [1, 1, None])
                       for r in sorted(set(rates)))


def frame_weights(plan: TrimPlan, outer: int = OUTER_FRAMES) -> npt.NDArray[np.float64]:
    """One weight per decoded frame: 1, plus each trimmed edge's dropped frames
    shared by the ``outer`` decoded frames furthest from the speech."""
    w = np.ones(plan.decoded_frames, dtype=np.float64)
    n = max(1, min(outer, plan.decoded_frames))
    dropped_lead, dropped_trail = plan.start_frame, plan.total_frames - plan.end_frame
    if dropped_lead:
        w[:n] += dropped_lead / n
    if dropped_trail:
        w[w.shape[0] - n:] += dropped_trail / n
    return w


def weight_feed(weights: npt.NDArray[np.float64], rates: list[Rate]) -> dict[str, npt.NDArray[np.float32]]:
    """Per-frame weights at each rate, scaled to mean 1 (the extra ``b``
    positions, padding, take the last frame's weight)."""
    feed = {}
    for a, b in sorted(set(rates)):
        w = np.concatenate([np.repeat(weights, a), np.repeat(weights[-1:], b)])
        feed[weight_input((a, b))] = (w / w.mean()).astype(np.float32).reshape(1, 1, -1)
    return feed
