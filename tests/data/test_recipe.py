import tomllib

import pytest

from stackcoder.cli import main
from stackcoder.data.recipe import default_recipe_text, load_recipe
from stackcoder.errors import UserError


def test_default_recipe_has_published_numbers():
    r = load_recipe()
    assert r["ingest"]["max_file_bytes"] == 10_000_000
    assert r["filters"]["long_lines"]["max_avg_line_length"] == 100
    assert r["filters"]["long_lines"]["max_line_length"] == 1_000
    assert r["filters"]["alpha"]["min_alpha_fraction"] == 0.25
    assert r["filters"]["encoded_data"]["max_match_length"] == 1_024
    assert r["filters"]["data_format_lines"]["max_lines"] == 512
    assert r["license"]["keep_classes"] == ["permissive", "no_license"]
    assert r["license"]["dep5"] is True  # ours: Debian copyright files license what they name


def test_license_switches_reach_the_license_step(tmp_path):
    from stackcoder.data.layout import DatasetLayout
    from stackcoder.data.license import LicenseDetector
    from stackcoder.data.pipeline import filter_pass

    f = tmp_path / "r.toml"
    f.write_text("[license]\ndep5 = false\n")
    for recipe, expected in ((load_recipe(), True), (load_recipe(f), False)):
        steps = filter_pass(recipe, [], DatasetLayout(tmp_path / "out"), 1, []).steps
        assert next(s for s in steps if isinstance(s, LicenseDetector)).dep5 is expected


def test_override_merges_one_value(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text("[filters.alpha]\nmin_alpha_fraction = 0.3\n")
    r = load_recipe(f)
    assert r["filters"]["alpha"]["min_alpha_fraction"] == 0.3
    assert r["filters"]["alpha"]["alnum_languages"] == ["Motorola 68K Assembly", "WebAssembly"]
    assert r["filters"]["line_count"]["max_lines"] == 100_000


@pytest.mark.parametrize(
    "text, message",
    [
        ("[filters.alpa]\n", "unknown setting 'filters.alpa'"),
        ("[filters.alpha]\nmin_alpha_fraction = 'x'\n", "must be float"),
        ("[filters]\nalpha = 3\n", "must be a table"),
        ("[ingest]\nmax_file_bytes = true\n", "must be int"),
        ("not toml ===", "not valid TOML"),
    ],
)
def test_bad_override_names_the_problem(tmp_path, text, message):
    f = tmp_path / "r.toml"
    f.write_text(text)
    with pytest.raises(UserError, match=message):
        load_recipe(f)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_recipe(tmp_path / "nope.toml")


def test_recipe_show_prints_default(capsys):
    assert main(["recipe", "show"]) == 0
    out = capsys.readouterr().out
    assert out == default_recipe_text()
    assert tomllib.loads(out) == load_recipe()


def test_recipe_show_merged_loads_back(tmp_path, capsys):
    f = tmp_path / "r.toml"
    f.write_text("[filters.html]\nmin_visible_chars = 50\n")
    assert main(["recipe", "show", "--recipe", str(f)]) == 0
    assert tomllib.loads(capsys.readouterr().out) == load_recipe(f)


def test_recipe_show_bad_file_is_one_line_error(tmp_path, capsys):
    f = tmp_path / "r.toml"
    f.write_text("[nope]\n")
    assert main(["recipe", "show", "--recipe", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown setting 'nope'" in err
