"""Files from users, read and checked in one place per kind of file.

Every command reads its CSV, GeoJSON, JSON and YAML inputs through this package, so that a
bad file is refused the same way everywhere: an :class:`~aerialsam.errors.InputError` naming
the file, and the line, feature or key at fault, which the command line prints as one line.

- :mod:`~aerialsam.inputs.text`: the encoding rule (UTF-8 with or without a byte-order mark;
  UTF-16/32 only with one; anything else refused with the byte offset), text and JSON files;
- :mod:`~aerialsam.inputs.tables`: CSV tables against a column schema (names, integer and
  finite-float columns, bounds, the line of the first bad value);
- :mod:`~aerialsam.inputs.vectors`: GeoJSON features and WKT geometries (finite coordinates,
  closed rings, enough positions) before GDAL or GEOS see them;
- :mod:`~aerialsam.inputs.schema`: YAML files and the typed schema a dataclass's annotations
  make (``steps: "abc"``, ``lr: .nan`` and unknown keys refused by name).

It belongs to the kernel: it imports only :mod:`aerialsam.errors` and third-party libraries.
"""

from aerialsam.inputs.schema import (
    AT_LEAST_ONE,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    Range,
    check_fields,
    check_ranges,
    field_types,
    load_yaml,
    load_yaml_mapping,
)
from aerialsam.inputs.tables import Column, read_table, row_line, row_source
from aerialsam.inputs.text import (
    decode_text,
    open_text,
    parse_json,
    read_bytes,
    read_json,
    read_text,
)
from aerialsam.inputs.vectors import (
    COORDINATE_LIMIT,
    feature_name,
    feature_problem,
    geometry_problem,
    parse_wkt,
    read_feature_collection,
)

__all__ = ["AT_LEAST_ONE", "COORDINATE_LIMIT", "FRACTION", "NON_NEGATIVE", "POSITIVE", "Column",
           "Range", "check_fields", "check_ranges", "decode_text", "feature_name",
           "feature_problem", "field_types", "geometry_problem", "load_yaml", "load_yaml_mapping",
           "open_text", "parse_json", "parse_wkt", "read_bytes", "read_feature_collection",
           "read_json", "read_table", "read_text", "row_line", "row_source"]
