"""Independent arena reference: Chatbot Arena's Bradley-Terry fit, online Elo and win fractions.

Written from FastChat's elo_analysis.py description, with NumPy only (no scikit-learn here):
the Bradley-Terry fit is FastChat's construction - one logistic-regression row per (winner,
loser) direction, wins weighted 2 and ties weighted 1 in each direction, X[a] = +log(base),
X[b] = -log(base), no intercept, no penalty - solved by iteratively reweighted least squares with
the minimum-norm Newton step (lstsq), which keeps the coefficients summing to zero as sklearn's
LBFGS from zero does. Ratings are init + scale * coef.

Writes fixtures/arena/battles.jsonl (seeded simulated battles, ties included) and
fixtures/arena/reference.json.

    /usr/bin/python3 scripts/reference/arena_reference.py
"""
import json
import math
import os

import numpy as np

SCALE, BASE, INIT, K = 400.0, 10.0, 1000.0, 4.0
ROOT = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'arena')


def simulate(seed=11, n=600):
    rng = np.random.default_rng(seed)
    models = ['atlas', 'birch', 'cedar', 'delta', 'ember', 'fjord']
    true = np.array([1180.0, 1110.0, 1050.0, 1000.0, 930.0, 880.0])
    battles = []
    for _ in range(n):
        a, b = rng.choice(len(models), size=2, replace=False)
        u = rng.random()
        if u < 0.08:
            w = 'tie'
        elif u < 0.12:
            w = 'tie (bothbad)'
        else:
            p = 1 / (1 + BASE ** ((true[b] - true[a]) / SCALE))
            w = 'model_a' if rng.random() < p else 'model_b'
        battles.append({'model_a': models[a], 'model_b': models[b], 'winner': w})
    return battles


def bradley_terry(battles, models):
    idx = {m: i for i, m in enumerate(models)}
    rows, ys, ws = [], [], []
    for bt in battles:
        a, b = idx[bt['model_a']], idx[bt['model_b']]
        x = np.zeros(len(models))
        x[a], x[b] = math.log(BASE), -math.log(BASE)
        if bt['winner'] == 'model_a':
            rows.append(x); ys.append(1.0); ws.append(2.0)
        elif bt['winner'] == 'model_b':
            rows.append(x); ys.append(0.0); ws.append(2.0)
        else:
            rows.append(x); ys.append(1.0); ws.append(1.0)
            rows.append(x); ys.append(0.0); ws.append(1.0)
    X, y, w = np.array(rows), np.array(ys), np.array(ws)
    beta = np.zeros(len(models))
    for _ in range(100):
        p = 1 / (1 + np.exp(-X @ beta))
        grad = X.T @ (w * (y - p))
        H = X.T @ (X * (w * p * (1 - p))[:, None])
        step = np.linalg.lstsq(H, grad, rcond=None)[0]
        beta = beta + step
        if np.abs(step).max() < 1e-14:
            break
    return {m: INIT + SCALE * beta[i] for i, m in enumerate(models)}


def online_elo(battles, models):
    r = {m: INIT for m in models}
    for bt in battles:
        ra, rb = r[bt['model_a']], r[bt['model_b']]
        ea = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        eb = 1 / (1 + BASE ** ((ra - rb) / SCALE))
        sa = {'model_a': 1.0, 'model_b': 0.0}.get(bt['winner'], 0.5)
        r[bt['model_a']] += K * (sa - ea)
        r[bt['model_b']] += K * (1 - sa - eb)
    return r


def win_fraction(battles, models):
    n = len(models)
    idx = {m: i for i, m in enumerate(models)}
    wins = np.zeros((n, n))
    for bt in battles:
        a, b = idx[bt['model_a']], idx[bt['model_b']]
        if bt['winner'] == 'model_a':
            wins[a, b] += 1
        elif bt['winner'] == 'model_b':
            wins[b, a] += 1
    total = wins + wins.T
    return [[None if i == j or total[i, j] == 0 else wins[i, j] / total[i, j] for j in range(n)] for i in range(n)]


def main():
    battles = simulate()
    os.makedirs(ROOT, exist_ok=True)
    with open(os.path.join(ROOT, 'battles.jsonl'), 'w') as f:
        for bt in battles:
            f.write(json.dumps(bt) + '\n')
    models = sorted({bt['model_a'] for bt in battles} | {bt['model_b'] for bt in battles})
    bt = bradley_terry(battles, models)
    models_by_rating = sorted(models, key=lambda m: -bt[m])
    expected = [[0.5 if a == b else 1 / (1 + BASE ** ((bt[b] - bt[a]) / SCALE)) for b in models_by_rating] for a in models_by_rating]
    out = {
        'settings': {'scale': SCALE, 'base': BASE, 'init': INIT, 'k': K},
        'bradleyTerry': bt,
        'onlineElo': online_elo(battles, models),
        'models': models_by_rating,
        'winRate': win_fraction(battles, models_by_rating),
        'expected': expected,
    }
    with open(os.path.join(ROOT, 'reference.json'), 'w') as f:
        json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
