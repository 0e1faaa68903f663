"""The behavioural suite of pair (aspect) models as data: contrast, negated aspects, no opinion."""

from __future__ import annotations

from collections.abc import Sequence

from sentiment_pipeline.evaluation.behavioural import Case

ASPECT_TEST_TYPES: tuple[str, ...] = ("contrast", "negated_aspect", "no_opinion")

# One sentence, two aspects with opposite opinions: (text, aspect, the label it must get).
_CONTRAST = [
    ("great video but the audio is terrible", "audio", "negative"),
    ("great video but the audio is terrible", "video", "positive"),
    ("the screen is gorgeous but the battery dies in an hour", "battery", "negative"),
    ("the screen is gorgeous but the battery dies in an hour", "screen", "positive"),
    ("awful keyboard, lovely display", "keyboard", "negative"),
    ("awful keyboard, lovely display", "display", "positive"),
    ("the host was funny but the editing was sloppy", "editing", "negative"),
    ("the host was funny but the editing was sloppy", "host", "positive"),
]
# A negated opinion of the aspect: (text, aspect, expected label or None, forbidden label or None).
_NEGATED = [
    ("the battery is not good", "battery", "negative", None),
    ("the sound is not great", "sound", "negative", None),
    ("the editing was not good at all", "editing", "negative", None),
    ("the screen is not bad", "screen", None, "negative"),
    ("the keyboard is not terrible", "keyboard", None, "negative"),
    ("the price was not bad for what you get", "price", None, "negative"),
]
# The aspect is mentioned without an opinion on it: neutral.
_NO_OPINION = [
    ("I bought it with a charger", "charger"),
    ("the box also had a manual", "manual"),
    ("I watched it on my laptop", "laptop"),
    ("she filmed it with a second camera", "camera"),
]


def build_aspect_suite(labels: Sequence[str]) -> list[Case]:
    """The deterministic pair suite; a case only where the data has the labels it names."""
    cases = [
        Case("contrast", (text, aspect), expected=label, variant=aspect)
        for text, aspect, label in _CONTRAST
        if label in labels
    ]
    cases += [
        Case("negated_aspect", (text, aspect), expected=expected, forbidden=forbidden)
        for text, aspect, expected, forbidden in _NEGATED
        if (expected or forbidden) in labels
    ]
    cases += [
        Case("no_opinion", (text, aspect), expected="neutral")
        for text, aspect in _NO_OPINION
        if "neutral" in labels
    ]
    return cases
