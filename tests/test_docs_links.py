"""Every relative link of the manual (docs/, README.md, benchmarks/ and launch/ READMEs) leads to an existing file and,
with ``#anchor``, to a heading of it (anchors as GitHub makes them)."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md", REPO / "benchmarks" / "README.md",
                                                 REPO / "launch" / "README.md"]


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    anchors, seen = set(), {}
    markdown = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{page.relative_to(root)}: {target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in heading_anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{page.relative_to(root)}: {target}: no such heading")
    return broken


def test_every_relative_link_of_the_manual_leads_to_a_file_and_heading():
    broken = [line for page in PAGES for line in broken_links(page)]
    assert not broken, "\n".join(broken)


def test_heading_anchors_follow_github():
    markdown = "# Results\n## The README's two commands\n```bash\n# not a heading\n```\n### `eval.split` (val)\n## Results\n"
    assert heading_anchors(markdown) == {"results", "the-readmes-two-commands", "evalsplit-val", "results-1"}


def test_a_link_to_a_missing_heading_is_reported(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n[ok](#top) [gone](b.md#part) [file](c.md)\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Other\n", encoding="utf-8")
    assert broken_links(tmp_path / "a.md", tmp_path) == ["a.md: b.md#part: no such heading", "a.md: c.md: no such file"]
