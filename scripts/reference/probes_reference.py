"""Independent reference fits for Lantern's probes (offline only; tests read the JSON it writes).

Fits, in float64 with PyTorch, on fixed random data with a planted direction:
  - logistic regression: mean log-loss + lambda/2 |w|^2 on standardised rows (population std), L-BFGS;
  - ridge linear regression on standardised rows, closed form;
  - mass-mean probes: class-mean difference, and the same times the inverse within-class covariance
    (+ ridge * mean variance on the diagonal);
  - CCS: the Burns et al. loss plus weight decay on each side's standardised rows, L-BFGS from a
    given initial point.

Usage: /usr/bin/python3 scripts/reference/probes_reference.py fixtures/probes/reference.json
"""
import json
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(17)
n, d = 160, 12
u = rng.normal(size=d)
u /= np.linalg.norm(u)
y = (rng.random(n) < 0.5).astype(np.float64)
X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d) + np.outer(2 * y - 1, u) * 1.2 + rng.normal(size=d)
# Contrast pairs: a truth direction flipped by the answer, plus an answer direction the per-side
# standardisation removes.
v = rng.normal(size=d)
truth = np.outer(2 * y - 1, u) * 1.5
Xp = rng.normal(size=(n, d)) + truth + v
Xn = rng.normal(size=(n, d)) - truth - v


def standardise(A):
    m = A.mean(0)
    s = A.std(0)
    return (A - m) / s, m, s


def lbfgs(params, closure_loss):
    opt = torch.optim.LBFGS(params, lr=1, max_iter=5000, tolerance_grad=1e-12, tolerance_change=1e-16, history_size=20, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = closure_loss()
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    return closure_loss().item()


# Logistic regression
lam = 0.01
Xs, _, _ = standardise(X)
Xt, yt = torch.tensor(Xs), torch.tensor(y)
w = torch.zeros(d, requires_grad=True)
b = torch.zeros((), requires_grad=True)
logistic_loss = lbfgs([w, b], lambda: torch.nn.functional.binary_cross_entropy_with_logits(Xt @ w + b, yt) + lam / 2 * (w @ w))
logistic = {'lambda': lam, 'w': w.detach().tolist(), 'b': b.item(), 'loss': logistic_loss}

# Ridge regression (standardised rows, centred target)
rl = 1e-4
G = Xs.T @ Xs / n + rl * np.eye(d)
lin_w = np.linalg.solve(G, Xs.T @ (y - y.mean()) / n)
linear = {'lambda': rl, 'w': lin_w.tolist(), 'b': y.mean()}

# Mass-mean
mu1, mu0 = X[y == 1].mean(0), X[y == 0].mean(0)
theta = mu1 - mu0
C = np.concatenate([X[y == 1] - mu1, X[y == 0] - mu0])
cov = C.T @ C / n
ridge = 1e-6
theta_iid = np.linalg.solve(cov + ridge * np.trace(cov) / d * np.eye(d), theta)
mass_mean = {'theta': theta.tolist(), 'theta_iid': theta_iid.tolist(), 'midpoint': ((mu1 + mu0) / 2).tolist(), 'ridge': ridge}

# CCS
wd = 0.01
Ps, _, _ = standardise(Xp)
Ns, _, _ = standardise(Xn)
Pt, Nt = torch.tensor(Ps), torch.tensor(Ns)
init = rng.uniform(-1, 1, size=d + 1) / np.sqrt(d)
cw = torch.tensor(init[:d].copy(), requires_grad=True)
cb = torch.tensor(init[d], requires_grad=True)


def ccs_loss():
    p = torch.sigmoid(Pt @ cw + cb)
    q = torch.sigmoid(Nt @ cw + cb)
    return ((p - (1 - q)) ** 2).mean() + (torch.minimum(p, q) ** 2).mean() + wd / 2 * (cw @ cw)


init_loss = ccs_loss()
init_loss.backward()
init_grad = cw.grad.tolist() + [cb.grad.item()]
cw.grad = None
cb.grad = None
ccs_final = lbfgs([cw, cb], ccs_loss)
ccs = {'weightDecay': wd, 'init': init.tolist(), 'initLoss': init_loss.item(), 'initGrad': init_grad, 'w': cw.detach().tolist(), 'b': cb.item(), 'loss': ccs_final}

out = {
    'source': 'scripts/reference/probes_reference.py (PyTorch %s, NumPy %s)' % (torch.__version__, np.__version__),
    'n': n, 'd': d, 'X': X.tolist(), 'y': y.tolist(), 'Xpos': Xp.tolist(), 'Xneg': Xn.tolist(), 'planted': u.tolist(),
    'logistic': logistic, 'linear': linear, 'massMean': mass_mean, 'ccs': ccs,
}
with open(sys.argv[1], 'w') as f:
    json.dump(out, f)
print('logistic loss', logistic_loss, 'ccs loss', init_loss.item(), '->', ccs_final)
