# Figures, tables and the report of a scale, from its runs (analysis/; usable without Snakemake).


rule experiment_analysis:
    input:
        experiment_inputs,
        config=config_marker,
        code=expand("{root}/analysis/{module}.py", root=workflow.basedir, module=["experiments", "stats", "load"]),
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
        "--experiment {wildcards.experiment} --config-json {params.config:q} > {log:q} 2>&1"


rule report:
    input:
        report_inputs,
        config=config_marker,
        code=expand("{root}/analysis/{module}.py", root=workflow.basedir, module=["report", "setups"]),
        published=PUBLISHED,
        discussion=discussions,
    output:
        "results/{scale}/REPORT.md",
    params:
        config=config_json,
    log:
        "results/{scale}/logs/analysis/report.log",
    threads: 1
    resources:
        runtime=10,
        mem_mb=4000,
    conda:
        "../envs/pgrepro.yaml"
    shell:
        "python -m analysis.report results/{wildcards.scale} --scale {wildcards.scale} --config-json {params.config:q} "
        "> {log:q} 2>&1"
