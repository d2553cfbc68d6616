# One training job: algorithm file × variant arguments × env, every seed of the scale in one process, one core.


rule train:
    wildcard_constraints:
        scale=SCALE,  # TRAIN_SEEDS are this scale's
    input:
        # a finished run that this config and code would not make again (other arguments, or code not shown
        # to compute its numbers: experiments/code_versions.yaml) gets a marker file newer than its outputs,
        # so Snakemake reruns the job even in a clone with no .snakemake/ history; the rerun removes the markers.
        # Nothing else is an input: a touched or checked-out file never reruns a run
        stale=stale_markers,
    output:
        # every seed's files. update(): Snakemake keeps the finished runs while the job trains (it trains only
        # the seeds missing or stale, seeds_to_train, and replaces a stale run itself, in one step, once
        # complete) and puts them back if the job fails or is stopped
        [update(f"results/{{scale}}/runs/{{variant}}/{{env}}/seed{seed}/{name}") for seed in TRAIN_SEEDS for name in RUN_FILES],
    log:
        "results/{scale}/logs/train/{variant}/{env}.log",
    benchmark:
        "results/{scale}/benchmarks/train/{variant}/{env}.tsv"
    params:
        script=train_script,
        args=train_args,
        steps=train_steps,
        seeds=lambda wildcards: " ".join(map(str, seeds_to_train(wildcards))),
        # {seed} stays for the run to fill in: each seed's own directory
        out=lambda wildcards: os.path.join(os.path.abspath(f"results/{wildcards.scale}/runs/{wildcards.variant}/{wildcards.env}"), "seed{seed}"),
        job=os.path.join(workflow.basedir, "experiments", "job.py"),
    threads: 1
    priority: train_priority
    resources:
        runtime=train_runtime,
        mem_mb=lambda wildcards: 1000 + 250 * len(seeds_to_train(wildcards)),
    conda:
        "../envs/pgrepro.yaml"
    group:
        "train"
    shell:
        # run from a scratch directory so MuJoCo's MUJOCO_LOG.TXT never lands in the repository;
        # torch and BLAS get exactly the rule's threads; experiments/job.py stops the run if the
        # workflow dies; --overwrite: a rerun replaces the old files only once it is complete. No seed to train:
        # the job was stopped after its last run finished, before Snakemake saw it end; the runs stand as they are
        "if [ -z '{params.seeds}' ]; then echo 'every seed of this job is finished and current: nothing to train' "
        "> {log:q}; else (cd {resources.tmpdir} && OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "OPENBLAS_NUM_THREADS={threads} python {params.job:q} python {params.script:q} --env-id {wildcards.env:q} "
        "--seed {params.seeds} --total-timesteps {params.steps} --threads {threads} --out {params.out:q} --overwrite "
        "--compress {params.args}) > {log:q} 2>&1; fi && rm -f {input.stale:q}"


rule random_policy:
    # no inputs: the anchors are remade only when missing (a touched or edited script reruns nothing; after a
    # change that alters them, delete results/<scale>/random/ to remake them)
    output:
        "results/{scale}/random/{env}.csv",
    log:
        "results/{scale}/logs/random/{env}.log",
    benchmark:
        "results/{scale}/benchmarks/random/{env}.tsv"
    params:
        script=os.path.join(workflow.basedir, "experiments", "random_policy.py"),
        episodes=lambda wildcards: config["scales"][wildcards.scale]["random_episodes"],
        out=lambda wildcards, output: os.path.abspath(output[0]),
    threads: 1
    resources:
        runtime=30,
        mem_mb=1000,
    conda:
        "../envs/pgrepro.yaml"
    shell:
        "(cd {resources.tmpdir} && python {params.script:q} --env-id {wildcards.env:q} --episodes {params.episodes} "
        "--seed 0 --out {params.out:q}) > {log:q} 2>&1"


rule gradient_noise:
    """VPG's four weights measured on the same batches of one frozen policy (experiments/gradient_noise.py)."""
    input:
        # as for train: a measurement this config and code would not make again gets a newer marker file
        stale=gradient_noise_stale_marker,
    output:
        csv=update("results/{scale}/gradient_noise/{env}/seed{seed}.csv"),
        record=update("results/{scale}/gradient_noise/{env}/seed{seed}.json"),
    log:
        "results/{scale}/logs/gradient_noise/{env}/seed{seed}.log",
    benchmark:
        "results/{scale}/benchmarks/gradient_noise/{env}/seed{seed}.tsv"
    params:
        script=os.path.join(workflow.basedir, "experiments", "gradient_noise.py"),
        flags=lambda wildcards: grid.gradient_noise_cli(config, wildcards.scale, wildcards.env),
        out=lambda wildcards, output: os.path.abspath(output.csv),
    threads: 1
    # part of the baselines experiment, the last of the paper grid (its VPG variants have priority -2)
    priority: -2
    resources:
        runtime=60,
        mem_mb=1500,
    conda:
        "../envs/pgrepro.yaml"
    shell:
        # gradient_noise.py passes vpg.py one thread (--threads 1 among the flags after --), the rule's threads
        "(cd {resources.tmpdir} && OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} "
        "python {params.script:q} --env-id {wildcards.env:q} --seed {wildcards.seed:q} --out {params.out:q} "
        "{params.flags}) > {log:q} 2>&1 && rm -f {input.stale:q}"
