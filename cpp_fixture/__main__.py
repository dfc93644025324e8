"""python -m cpp_fixture init DIR | list"""
import argparse
import sys

import cpp_fixture


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cpp_fixture", description="The farm's C++ optimisation target.")
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="materialise the naive library as a new git repository in DIR")
    init.add_argument("dir")
    init.add_argument("--apply", default="", help="comma-separated hypothesis ids to apply and commit on top")
    sub.add_parser("list", help="list the hypothesis pack with its ground truth")
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            repo = cpp_fixture.init_repo(args.dir)
            cpp_fixture.apply_patches(repo, [h for h in args.apply.split(",") if h])
            print(f"fixture repository ready in {repo} (build: cd {repo} && python build.py)")
        else:
            for entry in cpp_fixture.load_manifest():
                outcome = entry["expected"]["outcome"]
                print(f"{entry['id']:24} {entry['category']:12} {outcome:11} {entry['description']}")
    except cpp_fixture.FixtureError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
