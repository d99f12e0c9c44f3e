"""A robot quadlit can simulate: its physics record (``RobotModel``), its ground contact, and,
for a robot imported from a user's MJCF or URDF, where it came from.

The built-in A1 is ``builtin_robot()``; ``quadlit.physics.importer.import_robot(path)`` reads
any other quadruped of the same shape. A ``Robot`` travels in checkpoints as plain data
(``Robot.to_dict`` / ``Robot.from_dict``): a run, its tools and a resumed run use the record it
was trained on even when the robot's file has moved or changed since.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quadlit.physics.model import JOINT_NAMES, MODEL_DTYPE, RobotModel, SimParams, a1_model, model_fields, robot_model

BUILTIN_NAME = "a1"
"""The name of the built-in robot (``data.balance.robot: null`` or ``a1``)."""


@dataclass(frozen=True)
class Robot:
    """A quadruped: the record the kernels read and what the record cannot say.

    Attributes:
        name: the robot's name (the file's model name, or ``a1``).
        model: the physics record.
        contact_stiffness, contact_damping: the foot-ground spring (N/m) and damper (N·s/m) of
            quadlit's contact model (``SimParams``), mapped from the file's contact settings.
        source: the file it was imported from (None: the built-in A1).
        source_sha256: SHA-256 of that file's bytes when it was imported.
        mjcf: the file's own description as MuJoCo re-serialises it (visual meshes dropped):
            ``quadlit sim2sim`` runs MuJoCo on it when the file itself is gone or changed.
        mj_joints: MuJoCo joint id in ``mjcf`` of each of quadlit's 12 joints (FL FR RL RR x
            hip thigh calf).
        mj_joint_names: their names in the file ("" where unnamed).
        mj_joint_ref: each joint's reference angle in the file (quadlit's angle = MuJoCo's - ref), rad.
        mj_trunk: MuJoCo body id of the trunk in ``mjcf``.
        mj_feet: MuJoCo geom id of each foot sphere in ``mjcf``.
        notes: what the importer decided, one line each (where the pose and the gains came from,
            how the contact was mapped, what was approximated).
    """

    name: str
    model: RobotModel
    contact_stiffness: float = SimParams._field_defaults["contact_stiffness"]
    contact_damping: float = SimParams._field_defaults["contact_damping"]
    source: str | None = None
    source_sha256: str | None = None
    mjcf: str | None = None
    mj_joints: tuple[int, ...] = ()
    mj_joint_names: tuple[str, ...] = ()
    mj_joint_ref: tuple[float, ...] = ()
    mj_trunk: int = 1
    mj_feet: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def imported(self) -> bool:
        """Whether the robot came from a file (not the built-in A1)."""
        return self.source is not None

    def sim_params(self, **fields) -> SimParams:
        """``SimParams(**fields)`` with this robot's foot contact."""
        return SimParams(**{"contact_stiffness": float(self.contact_stiffness),
                            "contact_damping": float(self.contact_damping), **fields})

    def digest(self) -> str:
        """SHA-256 of what the physics sees (the record and the contact): two robots with the
        same digest simulate identically."""
        h = hashlib.sha256(np.asarray(self.model).tobytes())
        h.update(np.array([self.contact_stiffness, self.contact_damping], dtype=np.float64).tobytes())
        return h.hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, floats, strings) for a checkpoint; ``from_dict`` reads it back."""
        return {
            "name": self.name,
            "model": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in model_fields(self.model).items()},
            "contact_stiffness": float(self.contact_stiffness), "contact_damping": float(self.contact_damping),
            "source": self.source, "source_sha256": self.source_sha256, "mjcf": self.mjcf,
            "mj_joints": list(self.mj_joints), "mj_joint_names": list(self.mj_joint_names),
            "mj_joint_ref": list(self.mj_joint_ref), "mj_trunk": int(self.mj_trunk),
            "mj_feet": list(self.mj_feet), "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Robot":
        """The robot ``to_dict`` wrote (ValueError if the record is not a valid one)."""
        fields_ = dict(d["model"])
        unknown = set(fields_) - set(MODEL_DTYPE.names)
        if unknown:
            raise ValueError(f"unknown robot record fields {sorted(unknown)}")
        model = robot_model(fields_)
        return cls(name=str(d["name"]), model=model, contact_stiffness=float(d["contact_stiffness"]),
                   contact_damping=float(d["contact_damping"]), source=d.get("source"),
                   source_sha256=d.get("source_sha256"), mjcf=d.get("mjcf"),
                   mj_joints=tuple(int(x) for x in d.get("mj_joints", ())),
                   mj_joint_names=tuple(str(x) for x in d.get("mj_joint_names", ())),
                   mj_joint_ref=tuple(float(x) for x in d.get("mj_joint_ref", ())),
                   mj_trunk=int(d.get("mj_trunk", 1)), mj_feet=tuple(int(x) for x in d.get("mj_feet", ())),
                   notes=tuple(str(x) for x in d.get("notes", ())))

    def describe(self) -> str:
        """A few lines for people: name, source, mass, heights, and the importer's notes."""
        m = self.model
        lines = [f"robot {self.name}" + (f" from {self.source}" if self.source else " (built in)"),
                 f"  mass {m.total_mass:.3f} kg, standing height {m.standing_height:.4f} m (kinematic), "
                 f"settles at {m.nominal_height:.4f} m",
                 f"  foot contact {self.contact_stiffness:.0f} N/m, {self.contact_damping:.0f} N·s/m, "
                 f"foot radius {m.foot_radius:.4f} m"]
        if self.mj_joint_names:
            lines.append("  joints " + ", ".join(f"{q}<-{n or '#' + str(i)}" for q, n, i in
                                                 zip(JOINT_NAMES, self.mj_joint_names, self.mj_joints)))
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


def builtin_robot() -> Robot:
    """The built-in Unitree A1-sized robot (``a1_model()``, quadlit's default contact)."""
    return Robot(name=BUILTIN_NAME, model=a1_model())
