"""tools/ensemble_weights.py's selection rules and their split-half check, on synthetic
probabilities (no model needed)."""
import importlib.util
import os

import numpy as np
import pytest

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                    "ensemble_weights.py")


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("ensemble_weights", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def members(count_noise, faces=400, classes=7, seed=1):
    """One informative member (right on about 70 % of faces) and `count_noise` random ones."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, faces)
    good = rng.dirichlet(np.ones(classes), faces)
    right = rng.random(faces) < 0.7
    good[right, labels[right]] += 1.0
    noise = [rng.dirichlet(np.ones(classes), faces) for _ in range(count_noise)]
    return [good / good.sum(1, keepdims=True)] + noise, labels


def test_top_k_equal_weights_the_k_most_accurate_members(tool):
    outputs, labels = members(3)
    accuracy = [np.mean(p.argmax(1) == labels) for p in outputs]
    weights = tool.top_k_equal(outputs, labels, 2)
    assert sum(weights) == 2 and weights[0] == 1
    assert weights[int(np.argmax(accuracy[1:])) + 1] == 1


def test_split_half_scores_each_choice_on_the_other_half(tool):
    outputs, labels = members(3)
    choosers = tool.rules(max_weight=3, max_members=None, count=len(outputs))
    assert set(choosers) == {"grid", "top-2 equal", "top-3 equal", "top-4 equal"}
    found = tool.split_half(outputs, labels, choosers, repeats=4, seed=5)
    # By hand, the same seeded halves: choose on the first half, score on the second.
    rng = np.random.default_rng(5)
    for repeat in range(4):
        order = rng.permutation(len(labels))
        chosen, held = order[:200], order[200:]
        for name, choose in choosers.items():
            weights = choose([p[chosen] for p in outputs], labels[chosen])
            mix = sum(w * p[held] for w, p in zip(weights, outputs)) / sum(weights)
            assert found[name][1][repeat] == pytest.approx(np.mean(mix.argmax(1) == labels[held]))
    # With three members that are pure noise the grid fits the half it chooses on: its
    # in-sample accuracy overstates what it gets on the other half.
    inside, held = found["grid"]
    assert np.mean(inside) > np.mean(held) + 0.01


def test_grid_is_best_first_and_respects_the_member_budget(tool):
    outputs, labels = members(2, faces=300)
    results = tool.grid(outputs, labels, max_weight=2, max_members=2)
    assert all(sum(w > 0 for w in r[2]) == 2 for r in results)
    assert [r[0] for r in results] == sorted((r[0] for r in results), reverse=True)
    best = results[0][2]
    mix = sum(w * p for w, p in zip(best, outputs)) / sum(best)
    assert results[0][0] == pytest.approx(np.mean(mix.argmax(1) == labels))
