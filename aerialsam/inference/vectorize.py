"""Building masks to polygons: threshold, split touching buildings, polygonize, simplify, write.

The pipeline for one tile (all in pixel coordinates, x = column, y = row, origin at the
top-left corner of the top-left pixel, as ``PolygonWKT_Pix``):

1. :func:`label_buildings`: threshold a probability (or binary) mask into building
   instances. Touching buildings form one blob; they are split either by subtracting a
   contact channel (a model output marking the thin gaps between buildings) or by a
   watershed seeded from the blobs' interiors (pixels far from the blob edge). Each seed then
   grows back over its blob with :func:`scipy.ndimage.watershed_ift`, never across background.
2. :func:`polygonize`: one polygon per instance with :func:`rasterio.features.shapes`,
   simplified (tolerance in pixels), dropped below a minimum area, with a confidence (the
   mean probability inside the instance).
3. :func:`georeference` maps the polygons to the tile's CRS; :func:`write_proposals_csv`
   writes the SpaceNet proposal CSV and :func:`write_vector` a GeoPackage or GeoJSON.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS
from rasterio import features
from scipy import ndimage
from shapely.geometry import shape

from aerialsam.data.spacenet import image_id as to_image_id
from aerialsam.data.spacenet import to_geo
from aerialsam.errors import InputError
from aerialsam.io import atomic_path

log = logging.getLogger(__name__)

MIN_AREA = 20.0
"""Default minimum polygon area in px²: the SpaceNet metric ignores smaller polygons."""
_BARRIER = 255  # watershed cost of background pixels: seeds never flood across it
VECTOR_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}


def as_probability(values: np.ndarray) -> np.ndarray:
    """A float32 probability map from bool, ``uint8`` (0-255) or float (0-1) values."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {values.shape}")
    if values.dtype == bool:
        return values.astype(np.float32)
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255.0
    return values.astype(np.float32)


def _grow(seeds: np.ndarray, mask: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Grow labelled seeds over ``mask`` (never across background).

    Blobs without a seed become instances of their own.
    """
    count = int(seeds.max())
    markers = seeds.astype(np.int32)
    markers[~mask] = count + 1  # background is a marker too, so seeds cannot cross it
    cost = np.where(mask, np.clip(cost, 0, _BARRIER - 1), _BARRIER).astype(np.uint8)
    grown = ndimage.watershed_ift(cost, markers)
    grown[~mask] = 0
    orphans = mask & (grown == count + 1)
    if orphans.any():
        extra, _ = ndimage.label(orphans)
        grown[orphans] = extra[orphans] + count
    return grown


def label_buildings(prob: np.ndarray, threshold: float = 0.5, *,
                    contact: np.ndarray | None = None, contact_threshold: float = 0.5,
                    watershed: bool = False, seed_distance: float = 3.0) -> np.ndarray:
    """Building instances (int32 labels, 0 = background) from a probability or binary mask.

    Args:
        prob: building probability (float 0-1), binary (bool) or ``uint8`` (0-255) mask.
        threshold: building pixels have a probability strictly above this.
        contact: optional contact channel (same kinds as ``prob``): its pixels above
            ``contact_threshold`` are removed before labelling, then given back to the
            nearest instance, which splits buildings that touch.
        contact_threshold: threshold of the contact channel.
        watershed: split blobs by a watershed seeded from their interior (pixels at least
            ``seed_distance`` px from the blob edge), following narrow necks.
        seed_distance: interior depth of the watershed seeds, in pixels.

    Returns:
        An int32 label image; connected with 4-connectivity.
    """
    prob = as_probability(prob)
    mask = prob > threshold
    if contact is not None:
        touching = as_probability(contact) > contact_threshold
        seeds, _ = ndimage.label(mask & ~touching)
        # cost: distance to the nearest seed, so removed contact pixels go to the closer side
        cost = ndimage.distance_transform_edt(seeds == 0)
        return _grow(seeds, mask, cost)
    if watershed:
        depth = ndimage.distance_transform_edt(mask)
        seeds, _ = ndimage.label(depth >= seed_distance)
        cost = (_BARRIER - 1) - np.clip(depth * 8, 0, _BARRIER - 1)
        return _grow(seeds, mask, cost)
    labels, _ = ndimage.label(mask)
    return labels.astype(np.int32)


def polygonize(labels: np.ndarray, prob: np.ndarray | None = None, simplify: float = 1.0,
               min_area: float = MIN_AREA) -> gpd.GeoDataFrame:
    """One polygon per instance of a label image, in pixel coordinates.

    Args:
        labels: integer label image, 0 = background.
        prob: probability map for the confidence (mean inside each instance); without it
            every confidence is 1.0.
        simplify: Douglas-Peucker tolerance in pixels (0: keep the pixel staircase).
        min_area: drop polygons smaller than this (px²), after simplification.

    Returns:
        Columns ``label``, ``confidence``, ``area``, ``geometry`` (Polygon or MultiPolygon when
        an instance is not 4-connected), sorted by label.
    """
    labels = np.asarray(labels).astype(np.int32)
    if labels.ndim != 2:
        raise ValueError(f"expected a 2-D label image, got shape {labels.shape}")
    labels = _drop_specks(labels, min_area)
    pieces = [(shape(geom), int(value))
              for geom, value in features.shapes(labels, mask=labels > 0, connectivity=4)]
    if not pieces:
        return _empty_polygons()
    frame = gpd.GeoDataFrame({"label": [v for _, v in pieces]},
                             geometry=[g for g, _ in pieces])
    if frame["label"].duplicated().any():
        frame = frame.dissolve(by="label", as_index=False)
    frame = frame.sort_values("label").reset_index(drop=True)
    geoms = np.asarray(frame.geometry.array)
    if simplify > 0:
        geoms = shapely.make_valid(shapely.simplify(geoms, simplify, preserve_topology=True))
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index))
    ids = frame["label"].to_numpy()
    frame["confidence"] = (ndimage.mean(as_probability(prob), labels, ids) if prob is not None
                           else np.ones(len(frame)))
    frame["area"] = shapely.area(geoms)
    frame = frame[frame["area"] >= min_area].reset_index(drop=True)
    return frame[["label", "confidence", "area", "geometry"]]


def _drop_specks(labels: np.ndarray, min_area: float) -> np.ndarray:
    """Labels without instances of fewer than ``min_area / 2`` pixels.

    Their polygons could never reach ``min_area`` (a pixel outline's area is its pixel
    count; simplifying moves it by far less than half), and the speckle of an untrained or
    uncertain model would otherwise become tens of thousands of polygons to build and drop.
    """
    sizes = np.bincount(labels.ravel())
    specks = sizes < min_area / 2
    specks[0] = False
    return np.where(specks[labels], 0, labels) if specks.any() else labels


def _empty_polygons() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"label": pd.Series([], dtype=np.int32),
                             "confidence": pd.Series([], dtype=float),
                             "area": pd.Series([], dtype=float)},
                            geometry=gpd.GeoSeries([]))


def vectorize(prob: np.ndarray, threshold: float = 0.5, *, contact: np.ndarray | None = None,
              contact_threshold: float = 0.5, watershed: bool = False,
              seed_distance: float = 3.0, instances: np.ndarray | None = None,
              simplify: float = 1.0, min_area: float = MIN_AREA) -> gpd.GeoDataFrame:
    """Building polygons (pixel coordinates) from a probability or binary mask.

    With ``instances`` (an instance label map, e.g. from SAM masks) the labels are used as
    they are and ``prob`` only gives the confidences; otherwise :func:`label_buildings`
    thresholds and splits ``prob``. See :func:`label_buildings` and :func:`polygonize` for
    the arguments.

    Returns:
        Columns ``label``, ``confidence``, ``area``, ``geometry`` (pixel coordinates).
    """
    if instances is not None:
        labels = np.asarray(instances).astype(np.int32)
    else:
        labels = label_buildings(prob, threshold, contact=contact,
                                 contact_threshold=contact_threshold, watershed=watershed,
                                 seed_distance=seed_distance)
    return polygonize(labels, prob, simplify=simplify, min_area=min_area)


def rasterize_instances(polygons: Sequence[shapely.Geometry],
                        shape: tuple[int, int]) -> np.ndarray:
    """An int32 instance map of pixel-coordinate polygons: polygon ``i`` burns value ``i + 1``.

    Pixel-centre rule; a later polygon wins where two overlap. The inverse of
    :func:`polygonize`, for round trips and for scoring perfect instance masks.
    """
    shapes = [(geom, i + 1) for i, geom in enumerate(polygons) if not geom.is_empty]
    if not shapes:
        return np.zeros(shape, dtype=np.int32)
    return features.rasterize(shapes, out_shape=shape, dtype="int32")


def georeference(frame: gpd.GeoDataFrame, transform: Affine, crs: CRS | str) -> gpd.GeoDataFrame:
    """The polygons of ``frame`` (pixel coordinates) in the tile's CRS, by its transform."""
    return to_geo(frame, transform, crs)


def proposals_frame(tiles: Mapping[str, gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Join per-tile polygon frames into one proposal frame for the SpaceNet CSV.

    Args:
        tiles: tile file name or image id -> polygons in pixel coordinates (from
            :func:`vectorize`), each with a ``confidence`` column.

    Returns:
        Columns ``ImageId``, ``BuildingId`` (0.. per image), ``Confidence``, ``geometry``;
        ``attrs["image_ids"]`` lists every tile, those without polygons included.
    """
    parts, image_ids = [], []
    for name, frame in tiles.items():
        image = to_image_id(name)
        image_ids.append(image)
        parts.append(pd.DataFrame({"ImageId": image, "BuildingId": np.arange(len(frame)),
                                   "Confidence": frame["confidence"].to_numpy(dtype=float),
                                   "geometry": np.asarray(frame.geometry.array)}))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"ImageId": [], "BuildingId": [], "Confidence": [], "geometry": []})
    out = gpd.GeoDataFrame(table, geometry="geometry")
    out.attrs["image_ids"] = image_ids
    return out


def write_proposals_csv(proposals: gpd.GeoDataFrame, path: str | Path,
                        image_ids: list[str] | None = None, precision: int = 2) -> Path:
    """Write a SpaceNet proposal CSV: ``ImageId,BuildingId,PolygonWKT_Pix,Confidence``.

    Images without polygons (from ``image_ids``, default ``proposals.attrs["image_ids"]``)
    get the row ``ImageId,-1,POLYGON EMPTY,1`` so that the file lists every image scored.
    The file is written atomically.

    Args:
        proposals: columns ``ImageId``, ``geometry`` (pixels), ``Confidence`` and optionally
            ``BuildingId`` (default: 0.. per image).
        path: the CSV to write.
        image_ids: every image of the run.
        precision: decimals of the WKT coordinates.
    """
    if "Confidence" not in proposals.columns:
        raise ValueError("proposals need a 'Confidence' column")
    ids = proposals["ImageId"].astype(str)
    building = (proposals["BuildingId"] if "BuildingId" in proposals.columns
                else ids.groupby(ids).cumcount())
    geoms = np.asarray(proposals.geometry.array)
    table = pd.DataFrame({"ImageId": ids.to_numpy(), "BuildingId": building.to_numpy(),
                          "PolygonWKT_Pix": shapely.to_wkt(geoms, rounding_precision=precision,
                                                           trim=True),
                          "Confidence": proposals["Confidence"].to_numpy(dtype=float)})
    every = image_ids if image_ids is not None else proposals.attrs.get("image_ids", [])
    present = set(table["ImageId"])
    empty = [i for i in dict.fromkeys(every) if i not in present]
    if empty:
        table = pd.concat([table, pd.DataFrame({"ImageId": empty, "BuildingId": -1,
                                                "PolygonWKT_Pix": "POLYGON EMPTY",
                                                "Confidence": 1.0})], ignore_index=True)
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    log.info("wrote %d proposals for %d images to %s", len(proposals),
             table["ImageId"].nunique(), path)
    return path


def write_vector(frame: gpd.GeoDataFrame, path: str | Path, layer: str = "buildings") -> Path:
    """Write georeferenced polygons as a GeoPackage (``.gpkg``) or GeoJSON (``.geojson``).

    The file is written atomically, for QGIS and other GIS tools.

    Raises:
        InputError: unknown extension, or the frame has no CRS (georeference it first).
    """
    path = Path(path)
    driver = VECTOR_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise InputError(path, f"unknown vector format; use one of {', '.join(VECTOR_DRIVERS)}")
    if frame.crs is None:
        raise InputError(path, "polygons have no CRS; georeference them first "
                               "(aerialsam.inference.vectorize.georeference)")
    with atomic_path(path) as tmp:
        tmp.unlink(missing_ok=True)  # GDAL refuses to overwrite an existing GeoPackage/GeoJSON
        options = {"layer": layer} if driver == "GPKG" else {}
        frame.to_file(tmp, driver=driver, engine="pyogrio", **options)
    return path
