# Figures, tables and the report of a scale, from its runs (analysis/; usable without Snakemake).


rule experiment_analysis:
    input:
        experiment_inputs,
        config=config_marker,
        code=lambda w: expand("{root}/analysis/{module}.py", root=workflow.basedir,
                              module=["experiments", "common", "stats", "load", "setups", w.experiment]),
        published=PUBLISHED,
    output:
        table="results/{scale}/tables/{experiment}.csv",
        markdown="results/{scale}/tables/{experiment}.md",
        png=report(
            "results/{scale}/figures/{experiment}.png",
            category="{experiment}",
            caption="../report/figure.rst",
        ),
        pdf="results/{scale}/figures/{experiment}.pdf",
    log:
        "results/{scale}/logs/analysis/{experiment}.log",
    benchmark:
        "results/{scale}/benchmarks/analysis/{experiment}.tsv"
    params:
        config=config_json,
        subset=subset_flag,
    wildcard_constraints:
        experiment="|".join(ANALYSED),
    threads: 1
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../envs/pgrepro.yaml"
    shell:
        "MPLBACKEND=Agg python -m analysis.experiments results/{wildcards.scale} --scale {wildcards.scale} "
        "--experiment {wildcards.experiment} --config-json {params.config:q} {params.subset} > {log:q} 2>&1"


rule report:
    input:
        report_inputs,
        config=config_marker,
        code=expand("{root}/analysis/{module}.py", root=workflow.basedir,
                    module=["report", "discussions", "common", "setups", *ANALYSED]),
        published=PUBLISHED,
        discussion=discussions,
    output:
        "results/{scale}/REPORT.md",
    params:
        config=config_json,
        subset=subset_flag,
    log:
        "results/{scale}/logs/analysis/report.log",
    benchmark:
        "results/{scale}/benchmarks/analysis/report.tsv"
    threads: 1
    resources:
        runtime=10,
        mem_mb=4000,
    conda:
        "../envs/pgrepro.yaml"
    shell:
        "python -m analysis.report results/{wildcards.scale} --scale {wildcards.scale} --config-json {params.config:q} "
        "{params.subset} > {log:q} 2>&1"


# A subset's tables, figures and report (scales.<scale>.subsets; e.g. the paper scale's first 3 seeds): the same
# analyses on part of the runs, written under results/<scale>/<subset>/
use rule experiment_analysis as subset_analysis with:
    output:
        table="results/{scale}/{subset}/tables/{experiment}.csv",
        markdown="results/{scale}/{subset}/tables/{experiment}.md",
        png=report(
            "results/{scale}/{subset}/figures/{experiment}.png",
            category="{experiment} ({subset})",
            caption="../report/figure.rst",
        ),
        pdf="results/{scale}/{subset}/figures/{experiment}.pdf",
    log:
        "results/{scale}/{subset}/logs/analysis/{experiment}.log",
    benchmark:
        "results/{scale}/{subset}/benchmarks/analysis/{experiment}.tsv"
    wildcard_constraints:
        experiment="|".join(ANALYSED),
        subset=SUBSET_PATTERN,


use rule report as subset_report with:
    output:
        "results/{scale}/{subset}/REPORT.md",
    log:
        "results/{scale}/{subset}/logs/analysis/report.log",
    benchmark:
        "results/{scale}/{subset}/benchmarks/analysis/report.tsv"
    wildcard_constraints:
        subset=SUBSET_PATTERN,
