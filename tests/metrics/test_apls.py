"""SpaceNet 3 APLS against numbers the official scorer (Java) produced; refusals; aggregation.

Expected values were made with ``../shared/oracles/sn3_scorer/score.sh``; Java is not needed
here. The generated cases (:func:`write_cases`, seed 20240611) are regenerated with::

    .venv/bin/python -m tests.metrics.test_apls /tmp/apls_cases
    ../shared/oracles/sn3_scorer/score.sh --per-image /tmp/apls_cases/truth.csv \
        /tmp/apls_cases/proposals.csv
    ../shared/oracles/sn3_scorer/score.sh /tmp/apls_cases/truth.csv /tmp/apls_cases/proposals.csv

Each generated image is one scenario: perturbed grids, curved roads, dangling spurs, a
junction split into two nodes a few pixels apart, roads crossing without a junction,
disconnected parts, a ring road, dense truth-like vertices (control points then land next to
vertices, where the scorer's tolerant point equality shows), integer proposals, empty images,
and images listed in one file only. Coordinates are random floats, so that no two distances
tie exactly.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import shapely

from aerialsam.errors import InputError
from aerialsam.metrics import apls
from aerialsam.metrics.road_graph import build_road_graph, road_problem
from aerialsam.metrics.road_numerics import HashSetReplay, hypot1, java_hypot, point_hash

SEED = 20240611
TILE = 700.0
AOIS = ["AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai", "AOI_5_Khartoum"]
Roads = list[np.ndarray]


def _polyline(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, step: float,
              jitter: float) -> np.ndarray:
    """A road from ``a`` to ``b`` with vertices about every ``step`` px, moved by ``jitter``."""
    n = max(1, int(np.hypot(*(b - a)) // step))
    t = np.linspace(0.0, 1.0, n + 1)[1:-1]
    inner = a + t[:, None] * (b - a) + rng.normal(0.0, jitter, (len(t), 2))
    return np.vstack([a, inner, b])


def _grid(rng: np.random.Generator, spacing: float, drop: float, step: float) -> Roads:
    """A rotated, perturbed street grid; each block side is one road through shared corners."""
    theta = rng.uniform(0, np.pi / 2)
    k = int(TILE / spacing) + 2
    i, j = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1), indexing="ij")
    u, v = i * spacing, j * spacing * rng.uniform(0.85, 1.2)
    x = u * np.cos(theta) - v * np.sin(theta) + TILE / 2 + rng.normal(0, 6, u.shape)
    y = u * np.sin(theta) + v * np.cos(theta) + TILE / 2 + rng.normal(0, 6, u.shape)
    inside = (x > 10) & (x < TILE - 10) & (y > 10) & (y < TILE - 10)
    pts = np.stack([x, y], axis=-1)
    roads = []
    for di, dj in ((1, 0), (0, 1)):
        both = inside[:inside.shape[0] - di, :inside.shape[1] - dj] & inside[di:, dj:]
        for p, q in zip(*np.nonzero(both), strict=True):
            if rng.random() >= drop:
                roads.append(_polyline(rng, pts[p, q], pts[p + di, q + dj], step, 1.2))
    return roads


def _propose(rng: np.random.Generator, roads: Roads, miss: float, noise: float,
             integer: bool = False) -> Roads:
    """A proposal: most roads, inner vertices moved and thinned, ends shifted together."""
    ends = {}
    out = []
    for road in roads:
        if rng.random() < miss:
            continue
        road = road.copy()
        for k in (0, -1):
            key = tuple(road[k])
            ends.setdefault(key, road[k] + rng.normal(0, noise, 2))
            road[k] = ends[key]
        road[1:-1] += rng.normal(0, noise, road[1:-1].shape)
        out.append(np.vstack([road[0], road[1:-1:2], road[-1]]))
    if integer:
        out = [np.round(r) for r in out]
        out = [r[np.r_[True, np.any(np.diff(r, axis=0) != 0, axis=1)]] for r in out]
        out = [r for r in out if len(r) > 1]
    return _unique_sections(out)


def _unique_sections(roads: Roads) -> Roads:
    """Drop roads that would repeat a section (the scorer refuses repeated sections)."""
    seen, kept = set(), []
    for road in roads:
        keys = {tuple(sorted((tuple(np.round(road[i], 1)), tuple(np.round(road[i + 1], 1)))))
                for i in range(len(road) - 1)}
        if not keys & seen:
            seen |= keys
            kept.append(road)
    return kept


def _curves(rng: np.random.Generator) -> tuple[Roads, Roads]:
    x = np.linspace(20, TILE - 20, 60)
    truth, prop = [], []
    for base in rng.uniform(120, TILE - 120, 3):
        y = base + 60 * np.sin(x / rng.uniform(60, 140) + rng.uniform(0, 6))
        truth.append(np.stack([x, y], axis=1) + rng.normal(0, 0.3, (60, 2)))
        prop.append(np.stack([x[::3], y[::3] + rng.uniform(-6, 6)], axis=1))
    return truth, prop


def _spurs(rng: np.random.Generator) -> tuple[Roads, Roads]:
    truth = _grid(rng, rng.uniform(180, 240), 0.1, 40)
    prop = _propose(rng, truth, 0.1, 2.0)
    for _ in range(4):
        a = rng.uniform(60, TILE - 60, 2)
        prop.append(_polyline(rng, a, a + rng.normal(0, 90, 2), 30, 1.5))
    return truth, _unique_sections(prop)


def _split_junction(rng: np.random.Generator) -> tuple[Roads, Roads]:
    c = rng.uniform(250, 450, 2)
    arms = [c + 250 * np.array([np.cos(t), np.sin(t)]) for t in rng.uniform(0, 2 * np.pi, 4)]
    truth = [_polyline(rng, c, a, 35, 0.8) for a in arms]
    c2 = c + rng.normal(0, 5, 2)  # the proposal's junction is two nodes about 7 px apart
    prop = [_polyline(rng, c if k < 2 else c2, a + rng.normal(0, 3, 2), 50, 1.0)
            for k, a in enumerate(arms)]
    prop.append(np.vstack([c, c2]))
    return truth, prop


def _crossing(rng: np.random.Generator) -> tuple[Roads, Roads]:
    a, b = np.array([30.0, rng.uniform(200, 500)]), np.array([TILE - 30, rng.uniform(200, 500)])
    c, d = np.array([rng.uniform(200, 500), 30.0]), np.array([rng.uniform(200, 500), TILE - 30])
    t = np.linalg.solve(np.stack([b - a, c - d], axis=1), c - a)[0]
    x = a + t * (b - a)
    truth = [_polyline(rng, a, x, 40, 0.5), _polyline(rng, x, b, 40, 0.5),
             _polyline(rng, c, x, 40, 0.5), _polyline(rng, x, d, 40, 0.5)]
    prop = [_polyline(rng, a + 2.5, b - 1.5, 70, 1.0), _polyline(rng, c + 1.5, d + 2.0, 70, 1.0)]
    return truth, prop  # the proposal's roads cross without a junction


def _islands(rng: np.random.Generator) -> tuple[Roads, Roads]:
    left = [_polyline(rng, np.array([40.0, y]), np.array([300.0, y + 20]), 45, 1.0)
            for y in rng.uniform(80, 600, 2)]
    right = [_polyline(rng, np.array([x, 40.0]), np.array([x + 15, 650.0]), 45, 1.0)
             for x in rng.uniform(420, 660, 2)]
    truth = left + right
    prop = _propose(rng, left, 0.0, 2.0) + [
        _polyline(rng, np.array([300.0, 300.0]), np.array([500.0, 320.0]), 60, 1.0)]
    return truth, prop


def _ring(rng: np.random.Generator) -> tuple[Roads, Roads]:
    t = np.linspace(0, 2 * np.pi, 40)[:-1]
    c, r = rng.uniform(300, 400, 2), rng.uniform(150, 220)
    ring = c + r * np.stack([np.cos(t), np.sin(t)], axis=1) + rng.normal(0, 0.5, (39, 2))
    truth = [np.vstack([ring, ring[:1]])]  # a closed ring of two-section nodes
    approach = _polyline(rng, ring[5] + np.array([0.0, 0.0]), ring[5] + (ring[5] - c) * 0.8, 30,
                         0.5)
    truth.append(approach)
    prop = [np.vstack([ring[::2] + rng.normal(0, 2, (20, 2)), ring[:1] + 1.0])]
    return truth, prop


def _dense(rng: np.random.Generator) -> tuple[Roads, Roads]:
    truth = _grid(rng, rng.uniform(200, 260), 0.15, 6)  # vertices every ~6 px, like the truth
    return truth, _propose(rng, truth, 0.15, 2.5)


SCENARIOS: dict[str, Callable[[np.random.Generator], tuple[Roads, Roads]]] = {
    "curves": _curves, "spurs": _spurs, "split_junction": _split_junction,
    "crossing": _crossing, "islands": _islands, "ring": _ring, "dense": _dense,
}


def make_cases(seed: int = SEED) -> tuple[dict[str, Roads | None], dict[str, Roads | None]]:
    """Truth and proposal roads per image id (None: the image is absent from that file)."""
    rng = np.random.default_rng(seed)
    truth: dict[str, Roads | None] = {}
    prop: dict[str, Roads | None] = {}
    number = 0
    for aoi in AOIS:
        plan = ["grid", "grid_int"] + list(SCENARIOS)
        for name in plan:
            image = f"{aoi}_img{number}"
            number += 1
            if name.startswith("grid"):
                t = _grid(rng, rng.uniform(150, 260), 0.12, rng.uniform(20, 60))
                p = _propose(rng, t, 0.12, 2.5, integer=name == "grid_int")
            else:
                t, p = SCENARIOS[name](rng)
            truth[image], prop[image] = t, p
    truth["AOI_2_Vegas_img90"], prop["AOI_2_Vegas_img90"] = [], []  # both empty: 1
    truth["AOI_3_Paris_img91"], prop["AOI_3_Paris_img91"] = [], _grid(rng, 250, 0.2, 50)  # 0
    t = _grid(rng, 250, 0.2, 50)
    truth["AOI_4_Shanghai_img92"], prop["AOI_4_Shanghai_img92"] = t, []  # 0
    same = _grid(rng, 220, 0.1, 30)
    truth["AOI_5_Khartoum_img93"], prop["AOI_5_Khartoum_img93"] = same, same  # identical: 1
    truth["AOI_3_Paris_img94"], prop["AOI_3_Paris_img94"] = _grid(rng, 250, 0.2, 50), None
    truth["AOI_2_Vegas_img95"], prop["AOI_2_Vegas_img95"] = None, _grid(rng, 250, 0.2, 50)
    return truth, prop


def _wkt(road: np.ndarray) -> str:
    return "LINESTRING (" + ", ".join(f"{x!r} {y!r}" for x, y in road.tolist()) + ")"


def write_cases(folder: str | Path, seed: int = SEED) -> tuple[Path, Path]:
    """Write ``truth.csv`` and ``proposals.csv`` of :func:`make_cases` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truth, prop = make_cases(seed)
    paths = folder / "truth.csv", folder / "proposals.csv"
    for path, cases in zip(paths, (truth, prop), strict=True):
        with path.open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["ImageId", "WKT_Pix"])
            for image, roads in cases.items():
                if roads is None:
                    continue
                for road in roads or [None]:
                    out.writerow([image, "LINESTRING EMPTY" if road is None else _wkt(road)])
    return paths


SAMPLE = ("AOI_2_Vegas_img0", 0.8026764332623351, 0.7709073208719465, 0.7864711834595011)
HEADER = "ImageId,WKT_Pix\n"

# score.sh --per-image on write_cases(seed 20240611): gt_to_prop, prop_to_gt, apls. Per AOI the
# images are: grid, grid with integer proposals, curves, spurs, split junction, crossing
# without a junction, islands, ring road, dense truth vertices; then the edge cases 90-95.
EXPECTED = {
    "AOI_2_Vegas_img0": (0.3241789131554108, 0.9891977926937306, 0.48832458182491767),
    "AOI_2_Vegas_img1": (0.6474108993760391, 0.8920213057454337, 0.7502822324932075),
    "AOI_2_Vegas_img2": (0.6643351336197101, 0.995212220660645, 0.7967888857010175),
    "AOI_2_Vegas_img3": (0.7577615705423424, 0.9661824115682283, 0.8493731921892235),
    "AOI_2_Vegas_img4": (0.9835661570007476, 0.9798404746811236, 0.9816997809876549),
    "AOI_2_Vegas_img5": (0.4528211388547799, 0.9981918774730094, 0.6230163033228228),
    "AOI_2_Vegas_img6": (0.22914194503429697, 0.6624534002468971, 0.34050393248583816),
    "AOI_2_Vegas_img7": (0.471185629770447, 0.8021232458945938, 0.5936484917266583),
    "AOI_2_Vegas_img8": (0.9626167501873677, 0.9622070399689676, 0.9624118514735364),
    "AOI_2_Vegas_img90": (1.0, 1.0, 1.0),  # both empty
    "AOI_3_Paris_img9": (0.8750629458983117, 0.9679452314582846, 0.9191635893042752),
    "AOI_3_Paris_img10": (0.992372528058713, 0.9920655353592372, 0.9922190079630796),
    "AOI_3_Paris_img11": (0.6604854612187723, 0.9921144025937676, 0.7930257688236887),
    "AOI_3_Paris_img12": (0.9124438840299769, 0.9637826328091522, 0.9374108733123944),
    "AOI_3_Paris_img13": (0.994687377760531, 0.990982170190076, 0.9928313170649745),
    "AOI_3_Paris_img14": (0.4526808514425491, 0.9984554352608718, 0.6229348141904842),
    "AOI_3_Paris_img15": (0.23055419778782338, 0.6599589116274827, 0.34172724878379884),
    "AOI_3_Paris_img16": (0.4710920756441581, 0.8027092226620482, 0.5937346026345003),
    "AOI_3_Paris_img17": (0.7336554598909184, 0.9876287823671166, 0.8419053991669949),
    "AOI_3_Paris_img91": (0.0, 0.0, 0.0),  # empty truth, roads proposed
    "AOI_4_Shanghai_img18": (0.7932174328778837, 0.9208538684326506, 0.852283497209646),
    "AOI_4_Shanghai_img19": (0.8345014771571271, 0.9633927448444984, 0.8943269952335009),
    "AOI_4_Shanghai_img20": (0.6636780283635784, 0.9945579495863875, 0.7961065467785106),
    "AOI_4_Shanghai_img21": (0.994211868223203, 0.9382008919175656, 0.9653946411056503),
    "AOI_4_Shanghai_img22": (0.9854496988255184, 0.994375057691291, 0.989892259803319),
    "AOI_4_Shanghai_img23": (0.4532262763576671, 0.9988495305751149, 0.6235278505747038),
    "AOI_4_Shanghai_img24": (0.23064419204028175, 0.658645065661593, 0.34164959869955747),
    "AOI_4_Shanghai_img25": (0.5087060877472016, 0.8225652307479818, 0.6286381065035976),
    "AOI_4_Shanghai_img26": (0.9839975173954157, 0.9843120109832355, 0.9841547390646653),
    "AOI_4_Shanghai_img92": (0.0, 0.0, 0.0),  # roads in the truth, empty proposal
    "AOI_5_Khartoum_img27": (0.5311024288194649, 0.8658286630883025, 0.6583627618735383),
    "AOI_5_Khartoum_img28": (0.7321452374028589, 0.9087074072640844, 0.8109269319014832),
    "AOI_5_Khartoum_img29": (0.6629060510104618, 0.7054183202887123, 0.6835017819189021),
    "AOI_5_Khartoum_img30": (0.7740615860759057, 0.9289016200832607, 0.8444422742072135),
    "AOI_5_Khartoum_img31": (0.9790900337323213, 0.9813419352257924, 0.980214691126261),
    "AOI_5_Khartoum_img32": (0.45287007754646114, 0.9980204411368263, 0.6230292206758138),
    "AOI_5_Khartoum_img33": (0.23016353144600699, 0.6600299896408491, 0.3413074341195681),
    "AOI_5_Khartoum_img34": (0.5084761296940188, 0.8210255248281775, 0.6280125787352488),
    "AOI_5_Khartoum_img35": (0.7267450057561324, 0.9570639048622741, 0.8261524317419974),
    "AOI_5_Khartoum_img93": (1.0, 1.0, 1.0),  # identical roads
}
# score.sh (the tester's report) on the same files: each city at full precision
EXPECTED_AOI = {"AOI_2_Vegas": 0.7386049252204876, "AOI_3_Paris": 0.703495262124419,
                "AOI_4_Shanghai": 0.7075974234973151, "AOI_5_Khartoum": 0.7395950106300027}
UNSCORED = ["AOI_2_Vegas_img95", "AOI_3_Paris_img94"]  # in one file only


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_cases(tmp_path_factory.mktemp("apls_cases"))


@pytest.fixture()
def sample(samples_dir: Path) -> tuple[Path, Path]:
    folder = samples_dir / "sn3_roads"
    return folder / "truth_AOI_2_Vegas_img0.csv", folder / "proposals_albu_AOI_2_Vegas_img0.csv"


def test_sample_matches_official_scorer(sample: tuple[Path, Path]) -> None:
    result = apls.score_roads_csv(*sample)
    row = result.per_image.iloc[0]
    assert (row.image_id, row.aoi) == (SAMPLE[0], "AOI_2_Vegas")
    assert row.gt_to_prop == pytest.approx(SAMPLE[1], abs=1e-12)
    assert row.prop_to_gt == pytest.approx(SAMPLE[2], abs=1e-12)
    assert row.apls == pytest.approx(SAMPLE[3], abs=1e-12)
    assert result.to_json_dict() == {"per_aoi": {"AOI_2_Vegas": {"apls": row.apls, "images": 1}},
                                     "overall_apls": row.apls}


def _sample_roads(sample: tuple[Path, Path]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    truth, proposals = (apls.read_roads_csv(p)[SAMPLE[0]] for p in sample)
    return truth, proposals


def _networkx(roads: list[np.ndarray], separate_xy: bool) -> nx.MultiGraph:
    graph = nx.MultiGraph()
    for road in roads:
        u, v = tuple(road[0]), tuple(road[-1])
        for node in (u, v):
            graph.add_node(node, **({"x": node[0], "y": node[1]} if separate_xy else {"xy": node}))
        graph.add_edge(u, v, geometry=shapely.LineString(road[::-1] if u > v else road))
    return graph


def test_graph_level_apls_agrees_with_csv_path(sample: tuple[Path, Path]) -> None:
    truth, proposals = _sample_roads(sample)
    expected = apls.AplsResult(SAMPLE[3], SAMPLE[1], SAMPLE[2])
    lines = apls.apls_graphs([shapely.LineString(r) for r in truth],
                             [shapely.LineString(r) for r in proposals])
    graphs = apls.apls_graphs(_networkx(truth, False), _networkx(proposals, True))
    for got in (lines, graphs):
        for name in ("apls", "gt_to_prop", "prop_to_gt"):
            assert getattr(got, name) == pytest.approx(getattr(expected, name), abs=1e-12)


def test_generated_cases_match_official_scorer(cases: tuple[Path, Path]) -> None:
    result = apls.score_roads_csv(*cases)
    got = result.per_image.set_index("image_id")
    assert sorted(got.index) == sorted(EXPECTED)
    for image_id, (t2p, p2t, score) in EXPECTED.items():
        row = got.loc[image_id]
        assert row.gt_to_prop == pytest.approx(t2p, abs=1e-12), image_id
        assert row.prop_to_gt == pytest.approx(p2t, abs=1e-12), image_id
        assert row.apls == pytest.approx(score, abs=1e-12), image_id
    assert result.unscored == UNSCORED
    assert list(result.per_aoi.index) == list(EXPECTED_AOI)
    for aoi, score in EXPECTED_AOI.items():
        assert result.per_aoi.loc[aoi, "apls"] == pytest.approx(score, abs=1e-12)
        assert result.per_aoi.loc[aoi, "images"] == 10
    assert result.overall_apls == pytest.approx(sum(EXPECTED_AOI.values()) / 4, abs=1e-12)
    assert round(result.overall_apls, 6) == 0.722323  # the tester's "Overall score"


def test_city_named_by_one_file_only_counts_zero(sample: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    proposals = tmp_path / "proposals.csv"
    proposals.write_text(sample[1].read_text().rstrip("\n") +
                         '\nAOI_5_Khartoum_img7,"LINESTRING (10 10, 200 15)"\n')
    result = apls.score_roads_csv(sample[0], proposals)
    assert result.per_aoi.loc["AOI_5_Khartoum"].tolist() == [0.0, 0]
    assert result.overall_apls == pytest.approx(SAMPLE[3] / 2, abs=1e-12)
    assert result.unscored == ["AOI_5_Khartoum_img7"]


def test_bom_blank_lines_comments_and_repeated_header_are_read(sample: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    text = sample[0].read_text()
    head, first, rest = text.split("\n", 2)
    truth = tmp_path / "truth.csv"
    truth.write_text(f"\ufeff{head}\n{first}\n\n# a comment\n{head}\n{rest}", encoding="utf-8")
    read = apls.read_roads_csv(truth)[SAMPLE[0]]
    assert all(np.array_equal(a, b) for a, b in zip(read, _sample_roads(sample)[0], strict=True))
    assert apls.score_roads_csv(truth, sample[1]).overall_apls == pytest.approx(SAMPLE[3],
                                                                                abs=1e-12)


# Hand-made corner cases and the scorer's values (score.sh --per-image): a dead end whose
# last two vertices share a 0.1 px cell (the scorer drops that node), a junction next to such
# a pair, a near-duplicate vertex mid-road, a road that loops back to its junction, and whole
# pixels where a truth node lands as far from a proposal road's end as from the inside of
# another road, right at that end: the scorer's node set refuses the new node there, and
# routes to it take the distance its snapping stored (img5, cut from an integer grid tile).
QUIRKS_TRUTH = """ImageId,WKT_Pix
AOI_2_Vegas_img1,"LINESTRING (10.5 10.5, 200.3 15.2, 400.7 30.1, 400.72 30.13)"
AOI_2_Vegas_img1,"LINESTRING (200.3 15.2, 210.4 300.6)"
AOI_2_Vegas_img2,"LINESTRING (10.5 10.5, 200.3 15.2, 200.33 15.22, 400.7 30.1)"
AOI_2_Vegas_img2,"LINESTRING (200.3 15.2, 210.4 300.6)"
AOI_2_Vegas_img3,"LINESTRING (10.5 10.5, 300.3 15.2, 300.33 15.22, 700.7 30.1)"
AOI_2_Vegas_img4,"LINESTRING (10.5 10.5, 300.3 15.2, 500.1 200.2, 290.2 250.3, 300.3 15.2)"
AOI_2_Vegas_img4,"LINESTRING (500.1 200.2, 600.4 400.8)"
AOI_2_Vegas_img5,"LINESTRING (236 236, 344 236)"
AOI_2_Vegas_img5,"LINESTRING (344 236, 452 236)"
AOI_2_Vegas_img5,"LINESTRING (236 344, 344 344)"
AOI_2_Vegas_img5,"LINESTRING (344 344, 452 344)"
AOI_2_Vegas_img5,"LINESTRING (236 452, 344 452)"
AOI_2_Vegas_img5,"LINESTRING (344 452, 452 452)"
AOI_2_Vegas_img5,"LINESTRING (236 236, 236 344)"
AOI_2_Vegas_img5,"LINESTRING (236 344, 236 452)"
AOI_2_Vegas_img5,"LINESTRING (344 236, 344 344)"
AOI_2_Vegas_img5,"LINESTRING (452 236, 452 344)"
AOI_2_Vegas_img5,"LINESTRING (452 344, 452 452)"
"""
QUIRKS_PROPOSALS = """ImageId,WKT_Pix
AOI_2_Vegas_img1,"LINESTRING (11 12, 202 16, 399 31)"
AOI_2_Vegas_img1,"LINESTRING (202 16, 211 299)"
AOI_2_Vegas_img2,"LINESTRING (11 12, 202 16, 399 31)"
AOI_2_Vegas_img2,"LINESTRING (202 16, 211 299)"
AOI_2_Vegas_img3,"LINESTRING (11 12, 302 16, 699 31)"
AOI_2_Vegas_img4,"LINESTRING (11 12, 302 16, 499 201, 291 249, 302 16)"
AOI_2_Vegas_img4,"LINESTRING (499 201, 601 399)"
AOI_2_Vegas_img5,"LINESTRING (234 233, 346 234)"
AOI_2_Vegas_img5,"LINESTRING (349 234, 454 234)"
AOI_2_Vegas_img5,"LINESTRING (237 342, 346 342)"
AOI_2_Vegas_img5,"LINESTRING (344 342, 454 342)"
AOI_2_Vegas_img5,"LINESTRING (237 448, 346 450)"
AOI_2_Vegas_img5,"LINESTRING (349 457, 454 450)"
AOI_2_Vegas_img5,"LINESTRING (232 347, 238 450)"
AOI_2_Vegas_img5,"LINESTRING (339 236, 346 342)"
AOI_2_Vegas_img5,"LINESTRING (450 231, 454 342)"
AOI_2_Vegas_img5,"LINESTRING (451 344, 454 450)"
"""
QUIRKS_EXPECTED = {
    "AOI_2_Vegas_img1": (0.9959694782842238, 0.9966326906057914, 0.9963009740741091),
    "AOI_2_Vegas_img2": (0.9942317163670519, 0.9966326906057914, 0.995430755703922),
    "AOI_2_Vegas_img3": (0.9975244205463929, 0.9999716915069392, 0.9987465568660123),
    "AOI_2_Vegas_img4": (0.9955580670216397, 0.9954719495070128, 0.9955150064019168),
    "AOI_2_Vegas_img5": (0.07301069758714884, 0.9779158300509732, 0.13587689539819603),
}


def test_scorer_corner_cases(tmp_path: Path) -> None:
    truth, proposals = tmp_path / "truth.csv", tmp_path / "proposals.csv"
    truth.write_text(QUIRKS_TRUTH)
    proposals.write_text(QUIRKS_PROPOSALS)
    got = apls.score_roads_csv(truth, proposals).per_image.set_index("image_id")
    for image_id, expected in QUIRKS_EXPECTED.items():
        row = got.loc[image_id]
        assert (row.gt_to_prop, row.prop_to_gt, row.apls) == pytest.approx(expected, abs=1e-12)


def test_unquoted_wkt_is_read_to_the_end_of_the_line(tmp_path: Path) -> None:
    path = tmp_path / "roads.csv"
    path.write_text(HEADER + "AOI_2_Vegas_img1,LINESTRING (0 0, 100 0, 200 50)\n")
    assert apls.read_roads_csv(path)["AOI_2_Vegas_img1"][0].tolist() == [[0, 0], [100, 0],
                                                                         [200, 50]]


def test_several_processes_give_the_same_scores(cases: tuple[Path, Path]) -> None:
    truth, proposals = (apls.read_roads_csv(p) for p in cases)
    one = apls.score_roads(truth, proposals, workers=1)
    two = apls.score_roads(truth, proposals, workers=2)
    assert one.per_image.equals(two.per_image) and one.overall_apls == two.overall_apls


def test_empty_images() -> None:
    road = [np.array([[10.0, 10.0], [300.0, 20.0]])]
    assert apls.apls_graphs([], []) == apls.AplsResult(1.0, 1.0, 1.0)
    assert apls.apls_graphs(road, []) == apls.AplsResult(0.0, 0.0, 0.0)
    assert apls.apls_graphs([], road) == apls.AplsResult(0.0, 0.0, 0.0)
    assert apls.apls_graphs(road, road) == apls.AplsResult(1.0, 1.0, 1.0)


@pytest.mark.parametrize(("rows", "line", "message"), [
    (['"LINESTRING (0 0, 10 0)"', '"LINESTRING (10.02 0, 0.01 0)"'], 3, "duplicate section"),
    (['"LINESTRING (0 0, 0.005 0, 10 0)"'], 2, "zero-length section"),
    (['"LINESTRING (0 0, 10 0)"', '"LINESTRING (5 5)"'], 3, "lone point (5.0 5.0)"),
    (['"LINESTRING (0 0, 10 0)"', "LINESTRING EMPTY"], 3, "LINESTRING EMPTY beside other rows"),
    (['"LINESTRING (0 0, 10)"'], 2, "unparsable WKT"),
    (['"LINESTRING (0 0, 10 zero)"'], 2, "unparsable WKT"),
    (['"POLYGON ((0 0, 9 0, 9 9, 0 0))"'], 2, "expected a LINESTRING, found POLYGON"),
    (['"MULTILINESTRING ((0 0, 9 0))"'], 2, "expected a LINESTRING, found MULTILINESTRING"),
    (['"LINESTRING (0 0, nan 3)"'], 2, "non-finite coordinate"),
])
def test_refusals_name_file_line_image_and_problem(tmp_path: Path, rows: list[str], line: int,
                                                   message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "".join(f"AOI_3_Paris_img4,{row}\n" for row in rows))
    with pytest.raises(InputError) as info:
        apls.read_roads_csv(bad)
    text = str(info.value)
    assert "\n" not in text
    assert f"{bad}, line {line}" in text and "image AOI_3_Paris_img4" in text and message in text


@pytest.mark.parametrize(("body", "message"), [
    ("ImageId,BuildingId,PolygonWKT_Pix\n", "has building polygons (PolygonWKT_Pix)"),
    ("ImageId,Geometry\nAOI_2_Vegas_img1,LINESTRING EMPTY\n", "missing column 'WKT_Pix'"),
    (HEADER + 'tile7,"LINESTRING (0 0, 10 0)"\n', "line 2: ImageId 'tile7' names no SpaceNet"),
])
def test_bad_files_fail_in_one_line(tmp_path: Path, body: str, message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(body)
    with pytest.raises(InputError, match=None) as info:
        apls.read_roads_csv(bad)
    assert str(bad) in str(info.value) and message in str(info.value)
    with pytest.raises(InputError, match="file not found"):
        apls.read_roads_csv(tmp_path / "absent.csv")


def test_graph_api_refuses_what_the_scorer_refuses() -> None:
    twice = [np.array([[0.0, 0.0], [50.0, 0.0]]), np.array([[50.0, 0.0], [0.0, 0.0]])]
    assert road_problem(twice) == (1, "duplicate section (50.0 0.0) - (0.0 0.0)")
    with pytest.raises(ValueError, match="road 1: duplicate section"):
        apls.apls_graphs(twice, twice[:1])


def test_control_points_cut_long_edges_into_equal_pieces() -> None:
    graph = build_road_graph([np.array([[0.0, 0.0], [1000.0, 0.0]])])
    cuts = math.floor(1000.0 / (50 / 0.31))
    assert cuts == 6 and graph.n_nodes == 2 + cuts
    assert np.allclose(graph.lengths, 1000.0 / (cuts + 1))
    assert np.allclose(np.sort(graph.xy[:, 0]), np.arange(cuts + 2) * 1000.0 / (cuts + 1))
    short = build_road_graph([np.array([[0.0, 0.0], [120.0, 0.0]])])  # < 0.75 x 161.29
    assert short.n_nodes == 2


# Values printed by Java 17 (Math.hypot bits, new P2(x, y).hashCode(), HashSet<P2> order).
@pytest.mark.parametrize(("dx", "dy", "bits"), [
    (3.0, 4.0, 4617315517961601024),
    (0.1, 0.2, 4597224304218729945),  # numpy's hypot is one unit in the last place off here
    (-0.457385185527869, 478.3302345214365, 4647122494515015524),
    (-5.5, 7.25, 4621312539958599026),
    (161.29032258064515, 0.0, 4639878915288245545),
])
def test_hypot_is_javas_bit_for_bit(dx: float, dy: float, bits: int) -> None:
    assert java_hypot(np.array([dx]), np.array([dy])).view(np.int64)[0] == bits
    assert np.array([hypot1(dx, dy)]).view(np.int64)[0] == bits


def test_point_hash_is_javas() -> None:
    xy = np.array([[1354.3, 1789.6], [0.05, 0.05], [0.04999, 0.15], [-0.5, -1.5], [-0.51, 2.25],
                   [1299.95, 0.0], [21474.9, 1.0], [1018.1492185165091, 759.941737608186]])
    assert point_hash(xy).tolist() == [1354317896, 100001, 2, -500015, -499977, 1300000000, 63530,
                                       1018107599]


def test_hash_set_order_is_javas_with_a_crowded_bin() -> None:
    # nine points in one bin of a 16-bin table make Java double the table at 11 entries
    xy = np.array([[0.0, 1.6 * (k + 1)] for k in range(9)] + [[12.5, 3.3], [7.7, 0.9]])
    hashes = point_hash(xy)
    replay = HashSetReplay()
    replay.add_many(hashes)
    order = replay.order(hashes, np.arange(len(xy)))
    assert replay.capacity == 32
    assert [xy[i, 1] for i in order] == pytest.approx(
        [3.2, 6.4, 9.6, 12.8, 1.6, 4.8, 8.0, 11.2, 14.4, 0.9, 3.3])


if __name__ == "__main__":
    print(*write_cases(sys.argv[1] if len(sys.argv) > 1 else "apls_cases"))
