"""Users and groups a process needs (created on deploy when user changes are allowed)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Group:
    """A group to create; ``gid`` None lets the system (or the ids file) choose."""

    gid: int | None = None


@dataclass(frozen=True)
class User:
    """A user account to create, with the properties ``useradd`` understands.

    ``create_home_only`` creates the home directory (a state directory) but
    no account: it is what survives of a user in an unprivileged deployment.
    """

    uid: int | None = None
    group: str | None = None
    description: str | None = None
    home_dir: str = "/dev/null"
    shell: str | None = None
    password: str | None = None
    create_home: bool = False
    create_home_only: bool = False


@dataclass(frozen=True)
class Credentials:
    """Groups and users keyed by name."""

    groups: dict[str, Group] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.groups.items())), tuple(sorted(self.users.items()))))

    def is_empty(self) -> bool:
        """True when nothing is declared."""
        return not self.groups and not self.users
