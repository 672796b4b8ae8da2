"""The one rule for files (`sandbox.zoo.confine`): inside the folder, links resolved."""

from __future__ import annotations

import pytest

from sandbox.zoo.confine import OutsideError, confine, inside, real_folder


def test_a_link_out_is_refused_and_a_file_inside_is_kept(tmp_path):
    models, elsewhere = tmp_path / "models", tmp_path / "elsewhere"
    models.mkdir()
    elsewhere.mkdir()
    (models / "a.json").write_text("{}")
    (elsewhere / "secret.json").write_text("{}")
    (models / "b.json").symlink_to(elsewhere / "secret.json")
    assert confine(models / "a.json", models, "a.json") == models / "a.json"
    with pytest.raises(OutsideError, match="b.json is a link to a file outside"):
        confine(models / "b.json", models, "b.json")
    assert not inside(tmp_path / "models-other" / "x", str(models))  # a sibling with the same prefix


def test_a_re_pointed_folder_link_is_resolved_again(tmp_path):
    # The resolved folder is kept between checks; a link moved to another folder must not
    # keep the old answer (files of the new folder would be refused, or worse, the old ones kept).
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (two / "log.csv").write_text("Step\n")
    link = tmp_path / "models"
    link.symlink_to(one)
    assert real_folder(link) == str(one.resolve())
    link.unlink()
    link.symlink_to(two)
    assert real_folder(link) == str(two.resolve())
    assert confine(link / "log.csv", link, "log.csv") == link / "log.csv"
