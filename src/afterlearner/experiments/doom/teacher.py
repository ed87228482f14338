"""The scripted teacher the policy is cloned from: it reads the game's object labels (which the
policy never sees) and turns towards the monster nearest the crosshair, shooting when it is aligned.
"""

from __future__ import annotations

#: Labelled objects that are not targets: the player's own sprite, blood and bullet puffs.
NOT_TARGETS = frozenset({"DoomPlayer", "Blood", "BulletPuff"})
#: Horizontal centre of the 160-pixel screen.
CENTRE = 80.0


def teacher_action(state) -> int:  # state: vizdoom.GameState with labels
    """0 turn left, 1 turn right, 2 attack. Corpses are skipped as wider than tall; nothing in
    sight: keep turning right (the arena is circular, monsters come from everywhere)."""
    targets = [
        label
        for label in state.labels
        if label.object_name not in NOT_TARGETS and label.height >= max(3, label.width)
    ]
    if not targets:
        return 1
    nearest = min(targets, key=lambda label: abs(label.x + label.width / 2 - CENTRE))
    offset = nearest.x + nearest.width / 2 - CENTRE
    if abs(offset) <= max(2.0, nearest.width / 2):
        return 2
    return 1 if offset > 0 else 0
