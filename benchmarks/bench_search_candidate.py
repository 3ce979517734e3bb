"""Cost of one search candidate relative to one plain-model evaluation pass; prints ratios (not a test).

A candidate of the evolutionary search is scored on the merged plain model: ``SubnetMerger`` (Eq. 13-14 for
every adapted layer, written into one re-used plain model) followed by an evaluation pass over
the validation images. The baseline is the same evaluation pass on the untouched plain model. Timings are
medians over repeats interleaved between the two (so drift hits both alike), each candidate a fresh random
subnet.

    python benchmarks/bench_search_candidate.py                       # tiny ViT, 200 images (val200)
    python benchmarks/bench_search_candidate.py --backbone vit_base_patch16_224.orig_in21k --images 8
    python benchmarks/bench_search_candidate.py --device cuda --backbone vit_base_patch16_224.orig_in21k

Target (issue 4): candidate / plain evaluation <= 1.1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from supernet import trained_like

import glora
from glora.data.loading import Batches, accuracy
from glora.methods.glora.model import SubnetMerger
from glora.models import create_backbone, get_backbone


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vit_mini")
    parser.add_argument("--images", type=int, default=200, help="validation images (val200: 200)")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ratios", action="store_true", help="print only the ratio line (make bench)")
    args = parser.parse_args()

    torch.manual_seed(0)
    spec = get_backbone(args.backbone)
    supernet = create_backbone(args.backbone, num_classes=100).to(args.device).eval()
    glora.apply_glora(supernet, ranks=(8, 4))
    trained_like(supernet)
    space = glora.SearchSpace.from_model(supernet)
    merge = SubnetMerger(supernet)
    untouched = create_backbone(args.backbone, num_classes=100).to(args.device).eval()
    images = torch.randn(args.images, *spec.input_size)
    dataset = torch.utils.data.TensorDataset(images, torch.randint(0, 100, (args.images,)))
    val = Batches(dataset, args.batch_size, shuffle=False, fixed_transform=True, device=torch.device(args.device))

    def plain_pass() -> None:
        accuracy(untouched, val)

    def candidate(k: int) -> None:
        accuracy(merge(space.sample(k)), val)

    plain_pass(), candidate(0)  # warm-up
    times = {"plain_eval": [], "candidate": [], "merge_only": []}
    for k in range(args.repeats):
        for name, fn in (("plain_eval", plain_pass), ("candidate", lambda k=k: candidate(k + 1)),
                         ("merge_only", lambda k=k: merge(space.sample(k + 1000)))):
            sync(args.device)
            t0 = time.perf_counter()
            fn()
            sync(args.device)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    if args.ratios:
        print(f"search candidate / plain evaluation, {args.backbone}, {args.images} images: "
              f"{med['candidate'] / med['plain_eval']:.3f}x (merge {med['merge_only'] / med['candidate']:.0%} of it)"
              f"  [load {os.getloadavg()[0]:.2f}, {args.device}]")
        return
    print(json.dumps({"backbone": args.backbone, "device": args.device, "images": args.images,
                      "threads": torch.get_num_threads(), "median_s": {k: round(v, 5) for k, v in med.items()},
                      "candidate_over_plain_eval": round(med["candidate"] / med["plain_eval"], 3),
                      "merge_share_of_candidate": round(med["merge_only"] / med["candidate"], 3),
                      "target": "candidate_over_plain_eval <= 1.1"}, indent=1))


if __name__ == "__main__":
    main()
