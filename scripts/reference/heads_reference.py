"""Reference circuit scores for Lantern's head analysis (src/methods/heads/circuits.ts).

Writes fixtures/heads-reference.json: small random factor matrices and, computed densely in
float64 with torch (never through low-rank tricks), the eigenvalue copying score of each full
circuit A @ B (sum(eig) / sum(|eig|) over the eigenvalues of the n x n product, via
torch.linalg.eigvals) and the composition score ||L @ R||_F / (||L||_F ||R||_F) of pairs.

    /usr/bin/python3 scripts/reference/heads_reference.py fixtures/heads-reference.json
"""
import json
import sys

import torch


def main(out):
    g = torch.Generator().manual_seed(19)
    n, r = 12, 4  # d_model-like size, d_head-like rank
    cases = []
    for i in range(6):
        A = torch.randn(n, r, generator=g, dtype=torch.float64)
        B = torch.randn(r, n, generator=g, dtype=torch.float64)
        if i == 4:  # a copying case: B close to the pseudo-inverse of A
            B = torch.linalg.pinv(A) + 0.05 * B
        if i == 5:  # a suppressing case
            B = -torch.linalg.pinv(A) + 0.05 * B
        full = A @ B
        eig = torch.linalg.eigvals(full)
        score = (eig.sum().real / eig.abs().sum()).item()
        cases.append({"A": A.tolist(), "B": B.tolist(), "copying": score})
    pairs = []
    for i in range(len(cases)):
        for j in range(len(cases)):
            if i == j:
                continue
            L = torch.tensor(cases[i]["A"], dtype=torch.float64) @ torch.tensor(cases[i]["B"], dtype=torch.float64)
            R = torch.tensor(cases[j]["A"], dtype=torch.float64) @ torch.tensor(cases[j]["B"], dtype=torch.float64)
            comp = (torch.linalg.norm(L @ R) / (torch.linalg.norm(L) * torch.linalg.norm(R))).item()
            compT = (torch.linalg.norm(L @ R.T) / (torch.linalg.norm(L) * torch.linalg.norm(R))).item()
            pairs.append({"left": i, "right": j, "score": comp, "scoreRightTransposed": compT})
    with open(out, "w") as f:
        json.dump({"torch": torch.__version__, "n": n, "rank": r, "cases": cases, "pairs": pairs}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
