"""Write one configuration snapshot (results/configs/<name>.yaml) from the rule's params.

The snapshot is what a command reads with --config; the workflow reruns this job, and so everything
downstream of it, exactly when the part of the configuration it holds changes.
"""

import yaml

from astromorphic.io import write_text

header = (
    "# Written by the workflow from the configuration that ran (defaults filled in); do not edit.\n"
    "# Reporting-only and scheduling keys are left out of run configurations so that changing them retrains nothing.\n"
)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # write shared objects out in full, never as &anchors
        return True


text = header + yaml.dump(snakemake.params.config, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
write_text(snakemake.output[0], text)
with open(snakemake.log[0], "w", encoding="utf-8") as log:
    log.write(f"wrote {snakemake.output[0]}\n")
