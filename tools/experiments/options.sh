# Sourced by the experiment scripts in this folder, from the repository root:
# the binary (CLDETR, default build/src/cli/cldetr) and the options they all
# take. Before sourcing, a script sets its name, the lines of its header that
# --help prints, and the defaults: out, steps (and pre, where it takes
# --pre-steps). After it: out (the positional OUT), steps, pre, and sets
# (--set k=v ..., as cldetr arguments).
bin=${CLDETR:-build/src/cli/cldetr}
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --pre-steps) [ -n "${pre:-}" ] || { echo "$name: unknown option $1" >&2; exit 2; }; pre=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n "$help_lines" "$0"; exit 0 ;;
    -*) echo "$name: unknown option $1" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[ -x "$bin" ] || { echo "$name: no $bin (build first: meson setup build && ninja -C build)" >&2; exit 1; }
