"""Released revisions stay frozen: every file a released revision ships is pinned by its sha256 here.

A fix to a released function ships as a NEW revision (with its own frozen copy, `make freeze-sql`),
never as an edit under db/migrations/versions/<released>/. When a revision is released, add it to
RELEASED: `sha256sum db/migrations/versions/<REV>_*.py db/migrations/versions/<REV>/*` gives the lines.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from web.ops.embedded import PROJECT_ROOT

VERSIONS = PROJECT_ROOT / "db" / "migrations" / "versions"

# revision -> {path relative to db/migrations/versions/: sha256}. Exactly these files, exactly these bytes.
RELEASED: dict[str, dict[str, str]] = {
    "0001": {
        "0001_core.py": "f799ec38d7d243af78507951f67cd1249b093100c1b010d1a818df08dc2884dc",
        "0001/000_core_schema.sql": "f0872df1f92c2822a02a14022213cc7116524d6e7e72a274e78af1c6dfcb6c6e",
        "0001/100_weeks.sql": "959f170d1a17e9a1f74269c647ea709ecea4d2d6be246c5993fd72361c715593",
        "0001/200_apply_score_changes.sql": "a5233dbb5b138db2d71f368b663fb514a6a59440cbe8078b43573414bd7c1723",
        "0001/210_source_triggers.sql": "ad0d72fc8f722fe10e14c42549a2588007ff39cd1106c4c529816dbd9c27c0aa",
        "0001/220_student_profile_triggers.sql": "faa52384a347468721c255b5c42874dbec2b6b80e19c368cf68ffe998fd5a5a7",
        "0001/250_course_weekly_performance.sql": "0d6274c213ee1ed6d4a1b64521923270d87f7ad8a13d2fb4a125e793384c2951",
        "0001/300_refresh_and_check.sql": "98d05649a697ae34a2f0d573b2c7b79c1cccad8053b277a7552a124dbe423bcc",
        "0001/400_guardian_tokens.sql": "2b098a186733ee5a10a3e8e714aa28c168e3b8c50624839bb3a2dee1ce1cb29a",
    },
    "0002": {
        "0002_staff.py": "645db580af2451ac218f030f1e05a3e0d589e8182c9fe8b928d2db9a7131c22f",
        "0002/000_staff_schema.sql": "771a51021ba8e9fbdd838e169dcb78bf0f8147d479c7a0a240be4e9d64a43620",
        "0002/410_staff_tokens.sql": "e921f0b5dcc82cb42ae8b62def836076b3a872b6b9c6ae00d599e514ba7ed338",
    },
    "0003": {
        "0003_cheaper_writes.py": "586c418106fb8b31e15cbdd8e3e3881a9e596f83cd35992640f3555cb27f8225",
        "0003/000_writer_cost_schema.sql": "fd7acdb290b642a09de0251962a29b384f0690dc026cd9200c540b3231ce37f4",
        "0003/100_weeks.sql": "d2980b936de25dbfbe19d6ecbcea88738311421873f23fdbfae047ffb2e22a93",
        "0003/210_source_triggers.sql": "ca30542c1c072cefd7b6b4fd5e8cb542933153b88ea2de5e8a4a062ddf3749d1",
        "0003/220_student_profile_triggers.sql": "77b4b2086f3569b058658fda2007300a471da6001e378e46979369a344f4667e",
        "0003/300_refresh_and_check.sql": "5fe9ed2db784958dd7f21f9418e65cbedc684348269811bc27fbd382336373a4",
    },
    "0004": {
        "0004_hardening.py": "267294843ed5577a6a3cc167ff3931b35f6b84f19198f51cb30bb4ae7b05e524",
        "0004/000_hardening_schema.sql": "c96ab876265a68713902756228a1c91c1db83ad833e3989c3aaa3772dadb91cd",
        "0004/420_token_revocation.sql": "ff079503a755fdd20db3c8a7faaa52f1c4d003b7825c2df0f3e9afb1684acb3f",
        "0004/510_access_log.sql": "07935a6831065c8026fc014aad7d2dba1fb2551d6b1ce1fab3da4e32e0be160b",
    },
    "0005": {
        "0005_integrity.py": "5013c576de0d6fe281fe4ffe0073199756e42849bb289b8bf50fc9f476488461",
        "0005/000_integrity_schema.sql": "94e41ea3cf2e8d39a9aa09c30d8a31b697dcd10e9cdc884cf31fd3d83de26f0a",
        "0005/210_source_triggers.sql": "10415c93f1750b64f6577791baf2e86e67d79f1cc4205ce59f67908d916ca4d2",
        "0005/220_student_profile_triggers.sql": "21a839808577257e2104f495089edd875a2163d44c6470c355e3844bca85c09c",
        "0005/300_refresh_and_check.sql": "16ba8800559e8d1eb71966a49b91be5d9e34ce23e1d8997d70e33ed9981ce295",
    },
    "0006": {
        "0006_one_upsert.py": "95e8e2dcf4acdc6590e9a414efe434e67f49ccaf8027470a4929f74f2d5cf3b3",
        "0006/000_one_upsert_schema.sql": "016069ff9178a36a176920e4bb7a9a9571012b360c66decb8f75fd0cb1c422e9",
        "0006/100_weeks.sql": "87485caa489c3f224c3009e3d69143ab04c88f0ae5897fc6822f90ba2b64b9e6",
        "0006/210_source_triggers.sql": "29e0d2cd2e0910be0be43c5d66378cc92981bff3f8807588692341a7938e4793",
        "0006/220_student_profile_triggers.sql": "cd2f2901dfafd79e7ced8b4e69bc86440b4fb85fb766e84ef0158c407e390feb",
        "0006/300_refresh_and_check.sql": "6488cdacdcf5efd3aba075d4afae9924650630e485d656adabf2359707feef69",
        "0006/350_course_weekly_performance.sql": "baf4276ba4d05b8510845a5faaff416c018a4eb07cee66654261e557fd2072c9",
        "0006/430_weekly_trend_json.sql": "0c0d0cd02ab4151683def4c6118db495d5e1f59be0015beff47d2c26462f5d3d",
    },
    "0007": {
        "0007_guardian_language.py": "d282cd29509621a78c14108e5e6cdf7b826430bcad9230bd03b5a08eef390a18",
        "0007/000_guardian_language_schema.sql": "77bf312274139adeeb76adfe63501e48b62e50c1aefdc00ba5d88b63f58925cd",
        "0007/600_week_scores.sql": "14bcc4dac15453b0d6724ec7bc6fe1240e72c74dcbc76b3450e75334f9644526",
        "0007/610_guardian_language.sql": "ba4536d15eb74ec4536e3d067b79ee3ec53a1ccbe5dcd468f95e2f238460b0a3",
    },
    "0008": {
        "0008_mail.py": "5d350559873ff4e9975c9aca35a6e2aaa33f4aa5de383238703ab53e1f0afaa8",
        "0008/000_mail_schema.sql": "6f607ae410757299869134140dc9fe7b8cce77705ba537d8e577d5c32c85e810",
        "0008/430_weekly_trend_json.sql": "dda32b903664e1e1a49e7144044fadb3f2c034f8b00bd005a38ce2e1d9635478",
        "0008/600_weekly_trend_alerts.sql": "06ce402a0b719d1b0fc2ec506af452e9a8c8f880d357e5151cc150de82c4dd6b",
        "0008/610_mail.sql": "457f832065d63190a9470ca1a4cda0dba298440be0817a92f44510f349246502",
        "0008/620_staff_guardian_links.sql": "8c7bd8dd58ab900d77b21e731a1b1ca18ac68a20e401bcd798c0a7ad6f9ddddf",
    },
    "0009": {
        "0009_oneroster.py": "da10fd4832dea33f0e5a79ec846794e006ab825c9df937f22ab6d49dedf70633",
        "0009/000_oneroster_schema.sql": "e564a9f282bef05c29621f8ef477ac4a0179f8c3109dc9660fa52e81641e890b",
        "0009/600_oneroster.sql": "915892f458942e063a06deaeacdcfcab859469639eafa9498beb3e154a0971a7",
    },
    "0010": {
        "0010_delta_averages.py": "253c730768844db1791b7bc1a03007fa78670a7f4df1ae108fb77789e1e345df",
        "0010/210_source_triggers.sql": "0d783e7d56493effe6ee6908b7c10d837e75121cb71792ed08ad258e6c96c19c",
    },
    "0011": {
        "0011_alert_walk.py": "e24a89aed11bb1e70cf93015e514cb94e7fd273a0695a35a2b9d2e10869db1c0",
        "0011/600_weekly_trend_alerts.sql": "d7191452982bd6c39345151112eeaaf8e8b378a6b0f9a4b20412856a9e30832d",
    },
    "0012": {
        "0012_parallel_refresh.py": "36eadfba3ac017f7cf9ffb935eb50658cefea9a2f12509dd4c2fd9e1cc162bec",
        "0012/300_refresh_and_check.sql": "b7a13a53d7f361cc1d07337601a0d9151d79d4c54fa608cd128d10e01258bf2a",
    },
    "0013": {
        "0013_student_weekly_stats.py": "3b2ef0151e949160206a6a75a65000ec2eefec20dd1942803191b307e23dc3da",
        "0013/350_course_weekly_performance.sql": "ce95155dbcd5636780de5516be1972f1b4924e85d208c6aae828ceff322f4655",
        "0013/430_weekly_trend_json.sql": "f09ad845ae209653e5666a2f0ceb331fcff7152ee5dedc4c25e1b7c2881e97f8",
    },
    "0014": {
        "0014/.gitkeep": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "0014_holes.py": "ccc40b435ad9d9c464b8d84898e51826c3c115762a694c666dd7afd495f7a058",
        "0014/010_names_schema.sql": "47571b7a51fc6fd74895556e36ec83631b51a8ffa3bcc0f6d6b18ce71498aef1",
        "0014/020_ids_schema.sql": "47d0eb5e34c0335dc9eefd1adf276471bb8f2a98b364cec22a123edd41e6fa6b",
        "0014/021_reader_rls_schema.sql": "204f70eba4dbd59bb064d915a10d594977a394a93a75d7e9f0d8f688e4b349cc",
        "0014/050_named_pieces_schema.sql": "7107b69cb75e8d4b6407fc326b5a82585ef8b816f652deff43ae69a1c7b9a4fd",
        "0014/060_class_view_schema.sql": "aa1a8c02b77de890d3e4ff8de7090b99707cb938db8a949458e4b9bfea00f1d6",
        "0014/210_source_triggers.sql": "c84b57ff41e7b13108c0831d3e7f568bfa905522e335ee799f254bc8356b684c",
        "0014/300_refresh_and_check.sql": "30984e72858aeea014cb25e8efaf6ea96560c864a98e255b3e943b0fcfc35699",
        "0014/350_course_weekly_performance.sql": "8c43d108a972614d87df1b5ab8c039a0aabd0f8d334b603e678ec31b8205cc6d",
        "0014/425_sign_out.sql": "7d07bfab23025398187a533e8efac53664f1c1c3ee23dffc3132d87745a0412e",
        "0014/430_weekly_trend_json.sql": "08fcf21190054df4c918eee630ce9f0c0cb63a0ac4cc61d5c3ec0ff738f0b61d",
        "0014/600_weekly_trend_alerts.sql": "b58ae5a23c6f714ac76ff697a7a84ad450cde2d9d6df97b127bd1e7a1a9fab3f",
        "0014/610_mail.sql": "6210602ff545702c39b18d17c0308c7973300e84000a04c270e51b9647a7fb83",
        "0014/625_staff_unsent_link.sql": "8c4e52525b070d2a33ae25bedabf133ba587f53bd81a34082039f586c491dfee",
    },
    "0015": {
        "0015_family.py": "83164454142548a9cf68dea8fd3c61fbb8e55cf561eda2afa44a7533fdfefef8",
        "0015/.gitkeep": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "0015/100_rights_schema.sql": "20f9856c932e3c28cd3b04786a9e15c930e66a5db6b66d63b0c7cdf94eaf2024",
        "0015/140_guardian_access.sql": "08cf5b5c4450e9f4930248b340087b1a48c43d3999f267f1a0332dbf0c9037c4",
        "0015/149_rights_policies_schema.sql": "113ed97abdf935e0e05f0a7c961a5fa950c297c34c2002219e13b84926d61157",
        "0015/150_family_record_schema.sql": "9866a15dc75598cdba1dfaba5180f6528541b4bd608df0c5649f277b7ced82dc",
        "0015/170_left_at_schema.sql": "91c69b7c6b5e20e3fca4a1789358599b22ebf849d57763ca1c6390a6f64d0d56",
        "0015/200_missing_work_schema.sql": "332144a9a0cfed6121e4b0fa7ad93b49ddd84115bbb578d0e07bfa964d48c10d",
        "0015/210_oneroster_missing_work_schema.sql": "7737fc4aa2c1b47bc8c84d207eff89b08976d93b5d3dc3918138b2705a330e0a",
        "0015/240_missing_work.sql": "f4f3061193b675a5ba0e8bea7c5aee4820e0332adc467e01172b8f2e167170ed",
        "0015/250_alerts_schema.sql": "fa92d3a90b5a587f6015dffa94104a5d5d47805402cb594e391ee5d7bdf388ca",
        "0015/350_staff_attention_schema.sql": "8ad8b1f5eab0c80199fff2b4c13129ad9a2d9021b67461c59894f6f97675a60d",
        "0015/390_staff_attention.sql": "cb717afde6b077b12af39ae6573ffcd2b0b6e2248d219399c281949501a86399",
        "0015/415_staff_oidc.sql": "b4f5f6bd7d92e63e75414a62e1f12dfaa746a480675b39530dac7a4663d9d7e3",
        "0015/430_weekly_trend_json.sql": "c0f6c64f1b3f342edf9fcac43c9290f86fe15f95662f8286485e43fcf21ad330",
        "0015/510_access_log.sql": "1bfc5b3a997ab363a1f445b1e965efea48fb544fb4e2c9eea565f84c8731a6a6",
        "0015/600_week_scores.sql": "16ef483a155a2c2aa07e71f5b1cc1cb042c3c5eb3d36c4820b411af757d597c8",
        "0015/620_staff_guardian_links.sql": "da9923988bdc05f55785169715db7bda8836cb90f1737c2edaa431062046c0d9",
        "0015/630_alerts.sql": "872b8d5b7c044f5fd2960ad9e517ba329eb22a9d6a35f1d0cf0a43d8867b6e46",
        "0015/655_family_record.sql": "88c82332effa8c2c17a46035cbe0bffd95e1f930292eb678d8def7d8326df9c0",
        "0015/665_erasure_and_retention.sql": "11f963af9b9bddccca074db0c06c50b06629e8e40064284c6a427f6af2f86791",
    },
    "0016": {
        "0016/100_alert_walk_checkpoint_schema.sql": "858507088f78f993b2358fd71d93c6aaa760484f49c90589ab326fedbb0f7b35",
        "0016/210_source_triggers.sql": "9d2aff4e8bf72dc47e1a0309242a863ff5aa69e1c7725ec80190ad6a7cfa5ff4",
        "0016/220_student_profile_triggers.sql": "1412920a82482265f741f1d89a63093c5c98e74c93d3778283e21d237898b191",
        "0016/390_staff_attention.sql": "2478665413ab5f20aeb4aa34dc13daf11c6499127f8fbe5ab4d78b88b8c31048",
        "0016/600_weekly_trend_alerts.sql": "0acd80e7c55342baa3a07399402e4edebccd8cdf8ef6fbcede0071d7f4fb21c8",
        "0016/655_family_record.sql": "386903e1bd2eea532b4b217b589103fc02520fcc1b6c8b7cf9e0a3f99809821d",
        "0016/665_erasure_and_retention.sql": "4e553a31922efc9519b17c3b8ea0af877175ea23ec15b9bdc6a39d00e73afaed",
        "0016_attention_state.py": "c8e6c26335894496022749c7f42b82aafb5c4714aa8b3172534c99ba7f23cfbf",
    },
}


def shipped_files(revision: str, versions: Path = VERSIONS) -> dict[str, str]:
    """Every file the revision ships (its module and everything under its directory), with its sha256."""
    paths = list(versions.glob(f"{revision}_*.py"))
    directory = versions / revision
    if directory.is_dir():
        paths += [p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return {p.relative_to(versions).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.mark.parametrize("revision", sorted(RELEASED))
def test_a_released_revision_ships_exactly_its_pinned_files(revision):
    actual = shipped_files(revision)
    pinned = RELEASED[revision]
    assert sorted(actual) == sorted(pinned), (
        f"revision {revision} is released: files added {sorted(set(actual) - set(pinned))},"
        f" removed {sorted(set(pinned) - set(actual))}. Ship the change as a new revision."
    )
    changed = sorted(name for name in pinned if actual[name] != pinned[name])
    assert changed == [], (
        f"revision {revision} is released; these files changed: {changed}. Ship a new revision instead."
    )


def test_every_released_revision_is_in_the_migration_graph():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    assert set(RELEASED) <= {r.revision for r in script.walk_revisions()}


def test_every_revision_below_the_head_is_pinned():
    # Only the newest revision may still change (it has not been released yet): once another revision
    # follows it, it must be pinned here, or an edit to it would pass unnoticed.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    below_head = {r.revision for r in script.walk_revisions()} - set(script.get_heads())
    assert below_head - set(RELEASED) == set(), "pin these revisions in RELEASED"


def test_the_pin_notices_an_edit_an_added_file_and_a_removed_file(tmp_path):
    """The check itself can fail: a copy of a released revision, edited three ways."""
    for name in RELEASED["0002"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((VERSIONS / name).read_bytes())
    assert shipped_files("0002", tmp_path) == RELEASED["0002"]
    edited = tmp_path / "0002" / "410_staff_tokens.sql"
    edited.write_text(edited.read_text() + "\n-- a fix\n")
    assert shipped_files("0002", tmp_path) != RELEASED["0002"]
    edited.write_bytes((VERSIONS / "0002" / "410_staff_tokens.sql").read_bytes())
    (tmp_path / "0002" / "411_more.sql").write_text("select 1;\n")
    assert set(shipped_files("0002", tmp_path)) - set(RELEASED["0002"]) == {"0002/411_more.sql"}
    (tmp_path / "0002" / "411_more.sql").unlink()
    (tmp_path / "0002" / "000_staff_schema.sql").unlink()
    assert set(RELEASED["0002"]) - set(shipped_files("0002", tmp_path)) == {"0002/000_staff_schema.sql"}
