"""AAMI heartbeat classes and the MIT-BIH annotation symbols that map to them."""

CLASS_NAMES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
CLASS_DESCRIPTIONS: dict[str, str] = {
    "N": "normal / bundle branch block",
    "S": "supraventricular ectopic",
    "V": "ventricular ectopic",
    "F": "fusion",
    "Q": "paced / unclassifiable",
}

# AAMI EC57 grouping of the MIT-BIH beat symbols (labels 0..4 follow CLASS_NAMES).
AAMI_SYMBOLS: dict[str, int] = {
    **dict.fromkeys(("N", "L", "R", "e", "j"), 0),
    **dict.fromkeys(("A", "a", "J", "S"), 1),
    **dict.fromkeys(("V", "E"), 2),
    "F": 3,
    **dict.fromkeys(("/", "f", "Q"), 4),
}
