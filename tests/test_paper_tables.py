"""The paper's tables: reference values shipped with the package, Table 1's group means, and the three formats."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from glora.data.vtab import VTAB_TASKS
from glora.paper.reference import load
from glora.paper.render import write_table
from glora.paper.tables import efficiency_table, search_space_table, vtab_table

GROUPS = {"a1": "natural", "a2": "natural", "b1": "specialized", "c1": "structured", "c2": "structured"}


def evals(rows):
    return pd.DataFrame([{"variant": v, "method": m, "size": None, "task": t, "run": f"seed{s}", "seed": s,
                          "shot": None, "top1": acc, "merged": merged, "adapter_params": params,
                          "commit": "abc", "created": "2026-11-24T00:00:00"}
                         for v, m, t, s, acc, merged, params in rows])


def test_reference_tables_ship_with_the_package_and_name_their_sources():
    table1 = load("table1")
    assert list(table1.columns[3:22]) == list(VTAB_TASKS)
    assert table1["source"].notna().all()
    glora = table1.set_index("method").loc["GLoRA-0.29M"]
    groups = [[glora[t] for t in VTAB_TASKS if VTAB_TASKS[t].group == g] for g in ("natural", "specialized",
                                                                                     "structured")]
    # the printed average is the mean of the group means (77.36 from the rounded per-task values; printed 77.3)
    assert abs(sum(sum(g) / len(g) for g in groups) / 3 - glora["average"]) < 0.1
    with pytest.raises(ValueError, match="no reference table 'table9'"):
        load("table9")


def test_vtab_table_means_over_seeds_groups_and_tasks():
    rows = [("lora", "lora", t, s, acc + s, True, 1000) for t, acc in zip(GROUPS, (10, 20, 30, 40, 60))
            for s in (0, 2)]
    rows += [("glora_big", "glora", t, 0, 50.0, True, 3000 + 1000 * i) for i, t in enumerate(list(GROUPS)[:4])]
    table = vtab_table(evals(rows), GROUPS).set_index("method")
    lora = table.loc["LoRA"]
    assert lora["a1"] == 11 and lora["Natural"] == 16 and lora["Specialized"] == 31 and lora["Structured"] == 51
    assert lora["average"] == pytest.approx((16 + 31 + 51) / 3) and lora["mean_all"] == pytest.approx(33)
    assert lora["params_m"] == 0.001 and lora["inference_cost"] == "none"
    glora = table.loc["GLoRA-big"]   # c2 not run: its group and the averages are missing, not wrong
    assert math.isnan(glora["c2"]) and pd.isna(glora["Structured"]) and pd.isna(glora["average"])
    assert list(table.index) == ["LoRA", "GLoRA-big"]  # Table 1's row order


def test_write_table_gives_csv_markdown_and_booktabs_latex(tmp_path):
    df = pd.DataFrame({"method": ["A_x", "B"], "acc": [71.25, 80.0], "other": [None, 3.0]})
    paths = write_table(df, tmp_path / "t", caption="Table X", notes=["made by test"], bold_max=["acc"])
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex", ".html"]
    assert pd.read_csv(paths[0])["acc"].tolist() == [71.25, 80.0]
    md = paths[1].read_text()
    assert "| A_x      | 71.2  | –       |" in md and "- made by test" in md
    tex = paths[2].read_text()
    assert r"\toprule" in tex and r"\textbf{80.0}" in tex and r"A\_x" in tex and "71.2 " in tex
    page = paths[3].read_text()
    assert "<caption>Table X</caption>" in page and "<td><b>80.0</b></td>" in page and "<li>made by test</li>" in page


def test_appendix_e_counts_subnets_as_a_power():
    table = search_space_table({"vtab": "vit_base_patch16_224.orig_in21k", "mini": "vit_mini"},
                               [{"name": "one_rank", "ranks": [8]}])
    vit_b, mini = table.to_dict("records")
    assert vit_b["layers"] == 48 and vit_b["subnets"] == "432^48" and vit_b["options_per_layer"] == "432"
    assert vit_b["log10_subnets"] == pytest.approx(48 * math.log10(432))
    assert vit_b["appendix_E_formula"] == "432 × 48 = 20736"
    assert mini["layers"] == 16 and mini["subnets"] == "432^16"


def test_efficiency_table_keeps_table_4_columns(tmp_path):
    path = tmp_path / "t4.csv"
    pd.DataFrame([{"method": "backbone", "merged": True, "extra_params_m": 0.0, "extra_gflops": 0.0,
                   "throughput_bs1": 10.0, "relative_bs1": 1.0, "device": "cpu"},
                  {"method": "vpt_deep", "merged": False, "extra_params_m": 0.5, "extra_gflops": 5.6,
                   "throughput_bs1": 8.0, "relative_bs1": 0.8, "device": "cpu"}]).to_csv(path, index=False)
    table = efficiency_table(path)
    assert table["method"].tolist() == ["Backbone (untouched)", "VPT-Deep"]
    assert list(table.columns) == ["method", "merged", "extra_params_m", "extra_gflops", "throughput_bs1",
                                   "relative_bs1"]


def test_compare_with_golden_tables_and_a_perturbed_cell_fails_strict(tmp_path, capsys):
    from engine_fixtures import ROOT

    from glora.cli import main
    from glora.paper.compare import write_golden

    tables, golden = tmp_path / "tables", tmp_path / "golden"
    tables.mkdir()
    ours = pd.DataFrame({"method": ["Linear", "GLoRA-large"], "params_m": [0.0, 0.0412], "digits": [61.0, 70.5],
                         "average": [55.0, 60.25]})
    ours.to_csv(tables / "table1_vtab.csv", index=False)
    pd.DataFrame({"method": ["Backbone (untouched)", "LoRA"], "merged": [True, True], "extra_params_m": [0.0, 0.0],
                  "extra_gflops": [0.0, 0.0], "throughput_bs1": [100.0, 97.0]}).to_csv(
        tables / "table4_efficiency.csv", index=False)
    assert {p.name for p in write_golden(tables, golden)} == {"table1_vtab.csv", "table4_efficiency.csv"}
    assert "throughput_bs1" not in pd.read_csv(golden / "table4_efficiency.csv")  # speed is the machine's
    args = ["compare", "--config", str(ROOT / "config.yaml"), "--set", f"compare.golden={golden}", "--tables",
            str(tables), "--out", str(tmp_path / "cmp"), "--strict", "--quiet"]
    assert main(args) == 0
    assert '"within": 10, "outside": 0, "missing": 0, "not run": 0' in capsys.readouterr().out
    ours.loc[1, "digits"] += 1.5             # one accuracy moved by more than the ±1.0 tolerance
    ours.loc[0, "params_m"] = 0.01           # and a parameter count that prints differently
    ours.to_csv(tables / "table1_vtab.csv", index=False)
    assert main(args) == 1
    deltas = pd.read_csv(tmp_path / "cmp" / "deltas.csv")
    outside = deltas[deltas["status"] == "outside"]
    assert sorted(zip(outside["row"], outside["column"])) == [("GLoRA-large", "digits"), ("Linear", "params_m")]
    assert "| table1_vtab | 4 | 2 | 0 | 0 | ±1.0 |" in (tmp_path / "cmp" / "summary.md").read_text()
    assert main([*args[:-2], "--quiet"]) == 0  # without --strict the report is written and the exit code is 0
    (tables / "table1_vtab.csv").unlink()
    capsys.readouterr()
    # Table 1 not made: config.yaml runs Linear (missing: its parameter count and average; 'digits' is no task of
    # the paper's, and 'GLoRA-large' no size of config.yaml: not run), which --strict refuses
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert '"within": 4, "outside": 0, "missing": 2, "not run": 4' in out  # within: Table 4
    assert "2 cell(s) of enabled experiments missing (table1_vtab: Linear / params_m; table1_vtab: Linear / " \
           "average)" in err
    assert main(args[:-2] + ["--quiet"]) == 0  # without --strict: reported, exit 0
    missing = [*args[:3], "--set", f"compare.golden={tmp_path / 'nope'}", *args[5:]]
    assert main(missing) == 2 and "golden tables" in capsys.readouterr().err   # --strict: an error
    assert main(missing[:-2]) == 0                                              # else: said in the summary
    assert "--write-golden" in (tmp_path / "cmp" / "summary.md").read_text()


def test_compare_with_the_paper_covers_tables_2_3_and_5(tmp_path):
    """Table 5 of the paper configuration equals the paper's learning rates exactly; Table 3's GLoRA-0.29M is the
    paper's "GLoRA (0.29M)"; Table 2 matches rows by model, method and data and ignores the paper's own rows."""
    from engine_fixtures import ROOT

    from glora.config import load_config
    from glora.paper.compare import compare_table, write_golden
    from glora.paper.tables import learning_rates, llm_table

    config = load_config([ROOT / "config.yaml"])
    table5 = compare_table("table5_learning_rates", learning_rates(config, list(VTAB_TASKS)), load("table5"), 0.0)
    assert len(table5) == 19 and {r["status"] for r in table5} == {"within"}
    wrong = learning_rates(config, list(VTAB_TASKS)).replace({"lr": {1e-4: 5e-4}})
    assert sum(r["status"] == "outside" for r in compare_table("table5_learning_rates", wrong, load("table5"),
                                                              0.0)) == 4   # Table 5's four tasks at 1e-4

    table3 = pd.DataFrame({"method": ["GLoRA-0.29M"], "params_m": [0.2871], "imagenet": [77.9],
                           "imagenet_v2": [69.0], "imagenet_sketch": [30.0], "imagenet_a": [13.3],
                           "imagenet_r": [31.0]})
    records = {(r["row"], r["column"]): r["status"] for r in compare_table(
        "table3_domain_generalization", table3, load("table3"), 1.0)}
    assert records[("GLoRA", "params_m")] == "within" and records[("GLoRA", "imagenet_v2")] == "outside"
    assert records[("GLoRA", "imagenet")] == "within" and records[("LoRA", "imagenet")] == "missing"

    ours = pd.DataFrame([{"model": "LLaMA-2-7B", "method": "base", "dataset": None, "arc_25shot": 53.0,
                          "hellaswag_10shot": 78.5, "mmlu_5shot": 46.9, "truthfulqa_0shot": 38.8, "average": 54.3}])
    table2 = llm_table(load("table2"), ours.assign(source="ours"))
    records = pd.DataFrame(compare_table("table2_llm", table2, load("table2"), 1.0))
    assert set(records.loc[records["status"] != "missing", "row"]) == {"LLaMA-2-7B / base"}
    assert (records["status"] == "within").sum() == 5 and (records["status"] == "outside").sum() == 0
    table2.to_csv(tmp_path / "table2_llm.csv", index=False)
    assert [p.name for p in write_golden(tmp_path, tmp_path / "golden")] == ["table2_llm.csv"]
    golden = pd.read_csv(tmp_path / "golden" / "table2_llm.csv")   # our rows only, without provenance columns
    assert golden["model"].tolist() == ["LLaMA-2-7B"] and "source" not in golden
    assert {r["status"] for r in compare_table("table2_llm", table2, golden, 1.0, paper=False)} == {"within"}


@pytest.mark.parametrize("overlays", [["config/mini.yaml"], ["config/mini.yaml", "config/quick.yaml"],
                                      ["config/mini.yaml", "config/ci.yaml"]])
def test_golden_tables_are_committed_for_the_mini_suite_and_the_ci_overlay(overlays, monkeypatch):
    """``make run`` and ``make ci`` compare with golden tables: every comparable table must be there, its rows
    named by the table's key columns (else each cell would read "missing" and the check could not fail)."""
    from engine_fixtures import ROOT

    from glora.config import load_config
    from glora.paper.compare import TABLES, references

    monkeypatch.chdir(ROOT)
    config = load_config([ROOT / "config.yaml", *(ROOT / o for o in overlays)])
    golden = references(config)
    assert golden is not None, f"{config['compare']['golden']} is missing"
    experiments = config["experiments"]
    expected = {"table1_vtab", "table4_efficiency", "table5_learning_rates",
                *(["table2_llm"] if experiments["llm"]["enabled"] else []),
                *(["table3_domain_generalization"] if experiments["domain_generalization"]["enabled"] else []),
                *(["table6_vtab_swin"] if experiments["swin"]["enabled"] else []),
                *(["weight_sharing"] if config["diagnostics"]["weight_sharing"] else [])}
    assert set(golden) == expected
    for name, table in golden.items():
        assert len(table) and set(TABLES[name].keys) <= set(table.columns), name


def test_figures_from_fewshot_results_and_searched_subnets(tmp_path):
    """Figures 2/6 from few-shot evaluations, Figures 3/4 from GLoRA best.json files: PNG at 300 dpi and PDF."""
    import json

    from engine_fixtures import ROOT
    from PIL import Image

    import glora
    from glora.config import load_config
    from glora.models import create_backbone
    from glora.paper.outputs import run_figures

    results = tmp_path / "results"
    for dataset in ("flowers_mini", "textures_mini"):
        for shot in (1, 4, 16):
            for seed in (0, 1):
                path = results / "fewshot" / "evaluate" / "glora_large" / dataset / f"shot{shot}_seed{seed}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"method": "glora", "size": "glora_large", "merged": True,
                                            "adapter_params": 1000, "test": {"top1": 20.0 + 10 * shot ** 0.5}}))
    model = create_backbone("vit_mini", num_classes=3)
    glora.apply_glora(model, ranks=(8, 4))
    space = glora.SearchSpace.from_model(model)
    for i, task in enumerate(("digits", "specimen", "clevr_count_mini")):
        path = results / "vtab" / "search" / "glora_large" / task / "seed0" / "best.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"method": "glora", "size": "glora_large", "choices": space.sample(i)}))
    config = load_config([ROOT / "config.yaml", ROOT / "config" / "mini.yaml"], [f"paths.vtab={tmp_path}/none"])
    written = run_figures(config, results, tmp_path / "figures")
    names = {p.name for p in written}
    assert {"figure2_fewshot.png", "figure2_fewshot.pdf", "figure6_fewshot_flowers_mini.png",
            "figure3_params_per_layer_type.png", "figure4_layerwise_configuration.png"} <= names
    for path in written:
        assert path.stat().st_size > 1000
        if path.suffix == ".png":
            with Image.open(path) as image:
                assert round(image.info["dpi"][0]) == 300


def test_report_check_names_what_the_report_lacks(tmp_path):
    import zipfile

    from glora.paper.report_check import missing_from_report

    tables, figures = tmp_path / "tables", tmp_path / "figures"
    tables.mkdir(), figures.mkdir()
    for name in ("table1_vtab.html", "appendixE_search_space.html"):
        (tables / name).write_text("<table></table>")
    (figures / "figure5_tsne.png").write_bytes(b"png")
    report = tmp_path / "report.zip"
    with zipfile.ZipFile(report, "w") as z:
        z.writestr("report/report.html", "... Table 1 of the paper ... Figure 2 of the paper ...")
        z.writestr("report/data/raw/x/table1_vtab.html", "<table></table>")
        z.writestr("report/data/raw/y/figure5_tsne.png", "png")
    assert missing_from_report(report, tables, figures) == ["appendixE_search_space.html: not in the report"]
    with zipfile.ZipFile(report, "a") as z:
        z.writestr("report/data/raw/x/appendixE_search_space.html", "<table></table>")
    assert missing_from_report(report, tables, figures) == []


def test_figures_at_paper_scale(tmp_path):
    """The paper's configuration: 5 few-shot datasets x 5 shots x 3 seeds with the published GLoRA curves, and
    searched subnets of ViT-B/16 (48 layers) on the 19 VTAB tasks; every figure stays legible (bounded size)."""
    import json

    import torch
    from engine_fixtures import ROOT
    from PIL import Image

    import glora
    from glora.config import load_config
    from glora.data.vtab import VTAB_TASKS
    from glora.models import create_backbone
    from glora.paper.outputs import run_figures

    config = load_config([ROOT / "config.yaml"], [f"paths.vtab={tmp_path}/none"])
    spec = config["experiments"]["fewshot"]
    results = tmp_path / "results"
    for d, dataset in enumerate(spec["datasets"]):
        for shot in spec["shots"]:
            for seed in spec["seeds"]:
                path = results / "fewshot" / "evaluate" / "glora_0.86M" / dataset / f"shot{shot}_seed{seed}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"method": "glora", "size": "glora_0.86M", "merged": True,
                                            "test": {"top1": 30.0 + 8 * d + 9 * shot ** 0.5 + seed}}))
    with torch.device("meta"):
        model = create_backbone(config["backbone"], num_classes=2)
        glora.apply_glora(model, ranks=(8, 4))
    space = glora.SearchSpace.from_model(model)
    assert len(space) == 48
    for i, task in enumerate(VTAB_TASKS):
        path = results / "vtab" / "search" / "glora_0.86M" / task / "seed0" / "best.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"method": "glora", "size": "glora_0.86M", "choices": space.sample(i)}))
    out = tmp_path / "figures"
    written = run_figures(config, results, out)
    names = {p.name for p in written if p.suffix == ".png"}
    assert names == {"figure2_fewshot.png", "figure3_params_per_layer_type.png", "figure4_layerwise_configuration.png",
                     *(f"figure6_fewshot_{d}.png" for d in spec["datasets"])}
    for name in names:
        with Image.open(out / name) as image:
            width, height = image.size
        assert 600 < width <= 5400 and 600 < height <= 5400, (name, image.size)  # 300 dpi: at most 18 inches


def test_table_2_puts_our_llm_rows_beside_the_paper(tmp_path):
    import json

    from glora.paper.tables import llm_results, llm_table

    for row, scores in (("glora_sharegpt", (0.5, 0.75, 0.25, 0.5)), ("base", (0.25, 0.5, 0.25, 0.25))):
        path = tmp_path / "llm" / "evaluate" / "llama2_7b" / f"{row}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = ("arc", "hellaswag", "mmlu", "truthfulqa")
        path.write_text(json.dumps({"scores": {**dict(zip(keys, scores)), "average": sum(scores) / 4}}))
    ours = llm_results(tmp_path)
    table = llm_table(load("table2"), ours)
    assert len(table) == 7 + 2 and set(table["source"]) == {"paper", "ours"}
    mine = table[table["source"] == "ours"].set_index("method")
    assert mine.loc["GLoRA", "model"] == "LLaMA-2-7B" and mine.loc["GLoRA", "dataset"] == "ShareGPT"
    assert mine.loc["GLoRA", "hellaswag_10shot"] == 75.0 and mine.loc["GLoRA", "average"] == 50.0
    assert pd.isna(mine.loc["base", "dataset"])
    assert list(table.columns) == list(load("table2").columns)


def test_where_prints_table_1_the_comparison_and_the_outputs(tmp_path, monkeypatch, capsys):
    """What `make run` prints at the end: Table 1, the comparison's counts, where each output is."""
    from glora.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("suite: mini\nbackbone: vit_mini\nglora: {sizes: [{name: s, ranks: [2], "
                                          "budget_m: 0.01}]}\ncompare: {golden: golden}\n")
    assert main(["where", "--config", "config.yaml"]) == 0
    assert "nothing in results/mini yet" in capsys.readouterr().out
    tables = tmp_path / "results" / "mini" / "tables"
    tables.mkdir(parents=True)
    (tables / "table1_vtab.md").write_text("**Table 1: VTAB-1K top-1 (%)**\n\n| method | digits |\n")
    (tmp_path / "results" / "mini" / "compare").mkdir()
    pd.DataFrame({"status": ["within", "within", "outside", "missing"]}).to_csv(
        tmp_path / "results" / "mini" / "compare" / "deltas.csv", index=False)
    assert main(["where", "--config", "config.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("**Table 1: VTAB-1K top-1 (%)**")
    assert "Compared with golden: 2 cells within the tolerance, 1 outside, 1 missing" in out
    assert "results/mini/tables" in out and "report.zip" not in out  # only what exists
