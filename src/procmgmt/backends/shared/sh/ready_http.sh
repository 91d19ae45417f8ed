# shellcheck shell=sh disable=SC2034
## procmgmt_ready_error is read by procmgmt_ready_wait (ready_common.sh).

# procmgmt_ready_http URL STATUS HOST_HEADER: GET URL (redirects followed)
# answers STATUS. curl, else wget, else python3.
procmgmt_ready_http() {
    procmgmt_ready_code=
    if command -v curl >/dev/null 2>&1; then
        if [ -n "$3" ]; then
            procmgmt_ready_out=$(curl -sS -L -o /dev/null -w '\n%{http_code}' --max-time 2 \
                -H "Host: $3" "$1" </dev/null 2>&1)
        else
            procmgmt_ready_out=$(curl -sS -L -o /dev/null -w '\n%{http_code}' --max-time 2 \
                "$1" </dev/null 2>&1)
        fi
        procmgmt_ready_last "$procmgmt_ready_out"
        procmgmt_ready_code=$procmgmt_ready_line
        procmgmt_ready_line=$(printf '%s\n' "$procmgmt_ready_out" | sed -n 1p)
    elif command -v wget >/dev/null 2>&1; then
        if [ -n "$3" ]; then
            procmgmt_ready_out=$(procmgmt_ready_timeout 5 wget -q -S -O /dev/null -T 2 \
                --header "Host: $3" "$1" </dev/null 2>&1)
        else
            procmgmt_ready_out=$(procmgmt_ready_timeout 5 wget -q -S -O /dev/null -T 2 \
                "$1" </dev/null 2>&1)
        fi
        procmgmt_ready_code=$(printf '%s\n' "$procmgmt_ready_out" |
            awk '$1 ~ /^HTTP\// { code = $2 } END { print code }')
        procmgmt_ready_last "$procmgmt_ready_out"
    elif command -v python3 >/dev/null 2>&1; then
        procmgmt_ready_out=$(python3 -c 'import sys, urllib.error, urllib.request
req = urllib.request.Request(sys.argv[1])
if sys.argv[2]:
    req.add_header("Host", sys.argv[2])
try:
    with urllib.request.urlopen(req, timeout=2) as resp:
        print(resp.status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except (urllib.error.URLError, OSError) as exc:
    print(getattr(exc, "reason", exc))' "$1" "$3" </dev/null 2>&1)
        procmgmt_ready_last "$procmgmt_ready_out"
        procmgmt_ready_code=$procmgmt_ready_line
    else
        procmgmt_ready_error="cannot check $1: none of curl, wget and python3 is installed"
        return 1
    fi
    case $procmgmt_ready_code in
        "$2")
            return 0
            ;;
        '' | *[!0-9]* | 000)
            procmgmt_ready_error="GET $1: ${procmgmt_ready_line:-no answer}"
            ;;
        *)
            procmgmt_ready_error="GET $1: status $procmgmt_ready_code"
            ;;
    esac
    return 1
}
