# The rule that writes the resolved config results/<name>/config.yaml when it is missing (common.smk
# computes it and rewrites a stale one outside dry runs). A local rule: it is a file write, not a job.


localrules:
    resolved_config,


rule resolved_config:
    output:
        _CONFIG_PATH,
    log:
        RESULTS / "logs/resolved_config.log",
    message:
        "Writing the resolved config {output}"
    run:
        write_text(output[0], _RESOLVED_TEXT)
        write_text(log[0], f"wrote {output[0]} ({len(_RESOLVED_TEXT)} characters)\n")
