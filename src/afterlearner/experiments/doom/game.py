"""The ViZDoom game the Doom experiment plays: ``defend_the_center``, headless, low resolution.

The player stands in the middle of a circular arena and can turn left, turn right or shoot; monsters
walk in from all sides. There is one life and 26 pistol rounds, so the kills of an episode are the
kills per life. Each episode is fixed by its seed (the game's random numbers; the policy's sampling
is seeded separately), so a loss over a fixed list of seeds is deterministic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

#: The three buttons of ``defend_the_center``, one action each.
ACTIONS = ("turn left", "turn right", "attack")
#: Game tics each action is held (the usual frame skip for this scenario).
FRAME_SKIP = 4
#: Rows of the 120×160 screen the policy sees: the band around the horizon where monsters appear.
CROP = (30, 90)
#: Scale of the game variables (ammo, health) fed to the policy.
VARIABLE_SCALE = (26.0, 100.0)


class DoomError(RuntimeError):
    """ViZDoom is missing or the game failed to start."""


def make_game(labels: bool = False):  # -> vizdoom.DoomGame
    """A started, invisible, soundless ``defend_the_center`` game (``labels`` for the teacher)."""
    try:
        import vizdoom as vzd  # imported here: the package is an optional extra
    except ImportError as error:
        raise DoomError("ViZDoom is not installed: pip install 'afterlearner[experiments]'") from error
    game = vzd.DoomGame()
    game.load_config(os.path.join(vzd.scenarios_path, "defend_the_center.cfg"))
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
    game.set_screen_format(vzd.ScreenFormat.GRAY8)
    game.set_labels_buffer_enabled(labels)
    game.set_mode(vzd.Mode.PLAYER)
    try:
        game.init()
    except Exception as error:  # noqa: BLE001 - ViZDoom raises its own exception types
        raise DoomError(f"ViZDoom failed to start: {type(error).__name__}: {error}") from error
    return game


@dataclass
class Observation:
    """What the policy sees: the horizon band at half resolution and the scaled game variables."""

    frame: np.ndarray  # float32, (1, 30, 80), in [0, 1]
    variables: np.ndarray  # float32, (2,)


def observe(state) -> Observation:  # state: vizdoom.GameState
    """Crop the horizon band, halve the resolution (2×2 mean), scale pixels and variables."""
    screen = np.asarray(state.screen_buffer, dtype=np.float32)[CROP[0] : CROP[1]]
    half = screen.reshape(screen.shape[0] // 2, 2, screen.shape[1] // 2, 2).mean(axis=(1, 3)) / 255.0
    variables = np.asarray(state.game_variables, dtype=np.float32) / np.float32(VARIABLE_SCALE)
    return Observation(half[None].astype(np.float32), variables)


def button(action: int) -> list[int]:
    """The button vector of action index ``action``."""
    if not 0 <= action < len(ACTIONS):
        raise ValueError(f"action must be in [0, {len(ACTIONS) - 1}], got {action}")
    return [int(i == action) for i in range(len(ACTIONS))]


def kills(game) -> int:
    """Monsters killed so far in the current episode."""
    import vizdoom as vzd

    return int(game.get_game_variable(vzd.GameVariable.KILLCOUNT))


def batch(observations: list[Observation]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack observations into (frames, variables) tensors."""
    frames = torch.from_numpy(np.stack([o.frame for o in observations]))
    variables = torch.from_numpy(np.stack([o.variables for o in observations]))
    return frames, variables
