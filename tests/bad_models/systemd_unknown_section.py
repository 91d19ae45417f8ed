# expect: systemd_unknown_section\.py:\d+  web\.overrides\.systemd\.Servce: systemd: unknown systemd section \[Servce\]; did you mean Service\?
# expect: web\.overrides\.systemd\.Socket: systemd: unknown systemd section \[Socket\]; a \.service unit has \[Unit\], \[Service\], \[Install\]
# backend: systemd
from procmgmt import Process


def processes(settings):
    return {"web": Process(name="web", process="/bin/sleep", args=["1000"], overrides={"systemd": {
        "Servce": {"Restart": "always"},
        "Socket": {"ListenStream": "8080"},
    }})}
