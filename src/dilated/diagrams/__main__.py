"""``python -m dilated.diagrams [FOLDER]``: write the README's diagrams (default folder: ``docs/images``)."""

import argparse
from pathlib import Path

from dilated.diagrams import README_IMAGES, readme_images


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dilated.diagrams", description="Write the README's diagrams of the bundled seed stacks."
    )
    parser.add_argument("folder", nargs="?", type=Path, default=README_IMAGES, help="where to write the images")
    for written in readme_images(parser.parse_args(argv).folder):
        print(f"wrote {written}")


if __name__ == "__main__":
    main()
