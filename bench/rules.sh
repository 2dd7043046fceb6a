# Rate-limit rule files for the benchmarks (sourced by bench/*.sh): the limiter stays on, as it
# is in production, with limits that measure the server and not the limiter.

# generous FILE CATEGORY...: appends rules that never trip for those categories (a category
# without a rule is unlimited).
generous() {
    local file=$1; shift
    for category in "$@"; do
        printf '[[rule]]\nname = "%s-high"\nmatch = { category = "%s" }\nlimit = 1000000000\nwindow = "1m"\nkey = "ip+user"\n\n' \
            "$category" "$category" >> "$file"
    done
}

# flood_rules GENEROUS OUT: a login flood's server. Reads as GENEROUS has them (the /me probe is
# not what is measured); every other rule as shipped (src/ratelimit/default_rules.toml): the
# login rules are what the flood meets.
flood_rules() {
    python3 - src/ratelimit/default_rules.toml "$1" > "$2" <<'PY'
import sys
defaults, generous = (open(path).read() for path in sys.argv[1:])
kept = [b for b in defaults.split("[[rule]]")[1:] if 'category = "read"' not in b]
print(generous + "".join("[[rule]]" + b for b in kept))
PY
}
