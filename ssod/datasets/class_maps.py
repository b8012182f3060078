"""The COCO -> Objects365 (v2) label map of the MS-COCO -> Objects365 setting (spec A.2).

Labels on both sides are contiguous 0-based indices: a COCO label is the position of the
class in mmdet's ``CocoDataset.CLASSES`` (the 80 COCO classes sorted by category id), an
Objects365 label is the position of the category among the Objects365 v2 categories sorted
by id (category id = label + 1 in ``zhiyuan_objv2_*.json``). ``-1`` drops the annotation.

Two deliberate choices, each documented where it is decided:

* ``teddy bear``: upstream sends it to 295 "Bear", the target of ``bear`` too, so two COCO
  classes collide (spec H.31, I.7-44). The default here sends it to 70 "Stuffed Toy";
  ``upstream_teddy_bear=True`` restores the upstream target.
* ``sports ball``: dropped (-1), as upstream. Objects365 splits balls by sport ("Soccer",
  "Basketball", ...), and a COCO sports ball cannot be assigned to one of them. Its boxes
  are removed, so those objects are background in the COCO images.

The 365 Objects365 class names are not hard-coded: they come from the annotation file.
``OBJECTS365_ANCHOR_NAMES`` holds the names the spec states for a few map targets; they
check that a file's sorted categories are the Objects365 v2 ones the map indexes.
"""
NUM_COCO_CLASSES = 80
NUM_OBJECTS365_CLASSES = 365
DROPPED = -1

# Indexed by COCO label 0..79, giving the Objects365 label (upstream COCO_OBJECT365_CATEGORIES).
COCO_TO_OBJECTS365_UPSTREAM = (
    0, 46, 5, 58, 114, 55, 116, 65, 21, 40, 176, 127, 249, 24, 56, 139, 92, 78, 99, 96,
    144, 295, 178, 180, 38, 39, 13, 43, 120, 219, 119, 173, -1, 154, 137, 113, 145, 146, 204, 8,
    35, 10, 88, 84, 93, 26, 112, 82, 265, 104, 141, 152, 234, 143, 150, 97, 2, 50, 25, 75,
    98, 153, 37, 73, 115, 132, 106, 61, 163, 134, 277, 81, 133, 18, 94, 30, 169, 295, 328, 226,
)
COCO_TEDDY_BEAR = 77
COCO_SPORTS_BALL = 32
OBJECTS365_STUFFED_TOY = 70

# Objects365 v2 label -> category name, for the map targets the spec names.
OBJECTS365_ANCHOR_NAMES = {
    0: "Person",
    37: "Moniter/TV",
    56: "Wild Bird",
    70: "Stuffed Toy",
    98: "Dinning Table",
    119: "Skiboard",
    120: "Luggage",
    295: "Bear",
}


def coco_to_objects365_map(upstream_teddy_bear=False):
    """The 80-entry map from COCO label to Objects365 label (``-1``: dropped), as a tuple.

    ``upstream_teddy_bear=False`` (default) sends teddy bear to "Stuffed Toy" (70); True
    keeps upstream's "Bear" (295), so teddy bear and bear share one Objects365 class.
    """
    mapping = list(COCO_TO_OBJECTS365_UPSTREAM)
    if not upstream_teddy_bear:
        mapping[COCO_TEDDY_BEAR] = OBJECTS365_STUFFED_TOY
    return tuple(mapping)


def mapped_objects365_labels(upstream_teddy_bear=False):
    """Sorted distinct Objects365 labels the COCO classes reach: the "base" classes (spec A.2)."""
    return sorted({label for label in coco_to_objects365_map(upstream_teddy_bear) if label != DROPPED})


def check_objects365_names(names, source):
    """Raise ``ValueError`` unless ``names`` (in category-id order) are the Objects365 v2 classes.

    Checks the count (365) and the names of ``OBJECTS365_ANCHOR_NAMES``. ``source`` names
    where the names came from (a file or a config key), for the message.
    """
    names = list(names)
    if len(names) != NUM_OBJECTS365_CLASSES:
        raise ValueError(f"{source}: the COCO->Objects365 map needs the {NUM_OBJECTS365_CLASSES} "
                         f"Objects365 v2 classes in category-id order, got {len(names)} names")
    wrong = {index: names[index] for index, name in OBJECTS365_ANCHOR_NAMES.items() if names[index] != name}
    if wrong:
        expected = {index: OBJECTS365_ANCHOR_NAMES[index] for index in wrong}
        raise ValueError(f"{source}: not the Objects365 v2 categories the COCO->Objects365 map indexes: "
                         f"names at labels {sorted(wrong)} are {wrong}, expected {expected}")
