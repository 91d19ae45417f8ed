"""What several backends share: the foreground proxy (:mod:`.proxy`), the
readiness checks as POSIX sh (:mod:`.ready`) and the regex subset those checks
translate to ``grep -E`` (:mod:`.ere`). Their shell code is package data in
``sh/``."""
