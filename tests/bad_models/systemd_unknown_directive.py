# expect: systemd_unknown_directive\.py:\d+  web\.overrides\.systemd\.Service\.ExecStrat: systemd: unknown systemd directive ExecStrat= in \[Service\]; did you mean ExecStart\b
# expect: web\.overrides\.systemd\.Service\.restart: systemd: unknown systemd directive restart= in \[Service\]; did you mean Restart\?
# expect: web\.overrides\.systemd\.Service\.WantedBy: .*WantedBy= belongs in \[Install\]
# backend: systemd
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", args=["1000"], overrides={"systemd": {
        "Service": {"ExecStrat": "/bin/true", "restart": "always", "WantedBy": "x.target",
                    "X-Procmgmt-Note": "extension keys are fine"},
        "X-Mine": {"Anything": "goes"},
    }})}
