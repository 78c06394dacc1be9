"""Email replies, long comments, template comments, usernames (recipe.md §6)."""

from __future__ import annotations

from stackcoder.data.gharchive.bots import BotNames
from stackcoder.data.gharchive.text import remove_html_comments, strip_email_reply, truncate_lines
from stackcoder.data.gharchive.usernames import Usernames

GMAIL_REPLY = """I tried the patch and it fixes the crash for me, thanks!

On Tue, Mar 7, 2023 at 4:12 PM Jane Doe <notifications@github.com> wrote:

> @bob could you check whether 2.1.3 still crashes on start?
>
> —
> Reply to this email directly, view it on GitHub
> <https://github.com/octo-org/tools/issues/3#issuecomment-1458>,
> or unsubscribe
> <https://github.com/notifications/unsubscribe-auth/AAB>
> .
> You are receiving this because you were mentioned.Message ID:
> <octo-org/tools/issues/3/1458@github.com>
"""

OUTLOOK_REPLY = """Confirmed on Windows too.

________________________________
From: Jane Doe <notifications@github.com>
Sent: Tuesday, March 7, 2023 4:12 PM
To: octo-org/tools <tools@noreply.github.com>
Subject: Re: [octo-org/tools] Crash on start (#3)

could you check whether 2.1.3 still crashes?

—
Reply to this email directly, view it on GitHub, or unsubscribe.
"""

OLD_STYLE = """Yes, that is the one.

On 3/7/2023 04:12 PM, Jane Doe wrote:
> could you check?
—
Reply to this email directly or view it on GitHub:
https://github.com/octo-org/tools/issues/3#issuecomment-1458
"""


def test_email_reply_keeps_only_the_reply():
    assert strip_email_reply(GMAIL_REPLY) == "I tried the patch and it fixes the crash for me, thanks!"
    assert strip_email_reply(OUTLOOK_REPLY) == "Confirmed on Windows too."
    assert strip_email_reply(OLD_STYLE) == "Yes, that is the one."


def test_plain_comments_and_quotes_stay():
    text = "> the docs say X\n\nBut the code does Y, see line 12.\nOn Monday I will send a fix."
    assert strip_email_reply(text) == text
    signed = "Fixes the typo.\n\nSigned-off-by: Jane Doe <jane@example.org>"
    assert strip_email_reply(signed) == "Fixes the typo."


def test_long_texts_keep_60_then_marker_then_20():
    lines = [f"line {i}" for i in range(100)]
    cut = truncate_lines("\n".join(lines)).split("\n")
    assert cut[:60] == lines[:60] and cut[60] == "[Truncated]" and cut[61:] == lines[80:]
    eighty = "\n".join(lines[:80])
    assert truncate_lines(eighty) is eighty


def test_template_comments_go():
    body = "<!-- Describe your change -->\nAdds a --dry-run flag.\n<!-- Link the issue -->Fixes #3"
    assert remove_html_comments(body) == "\nAdds a --dry-run flag.\nFixes #3"


def test_usernames_in_order_of_first_appearance_and_in_texts():
    names = Usernames()
    assert [names.add(x) for x in ("Jane-Doe", "bob", "jane-doe", "octo")] == [
        "username_0",
        "username_1",
        "username_0",  # logins are case-insensitive
        "username_2",
    ]
    text = "Thanks @JANE-DOE and @bob! bob: octocat is not octo, and jane-doe@example.org is mail. bobby"
    assert names.replace(text) == (
        "Thanks @username_0 and @username_1! username_1: octocat is not username_2, "
        "and jane-doe@example.org is mail. bobby"
    )
    names.add("bob")
    assert names.replace("bob wrote to bob@example.org, see github.com/bob/x and bob/x.") == (
        "username_1 wrote to bob@example.org, see github.com/bob/x and bob/x."
    )
    # a bare word is replaced only in the login's own case: a user named "Bug" leaves "bug" alone
    names.add("Bug")
    assert names.replace("This bug was reported by Bug.") == "This bug was reported by username_3."


def test_bots_by_name_pattern_and_user_type():
    bots = BotNames(["coveralls"], ["[bot]", "jenkins"], ["-ci", "bot"])
    assert bots("dependabot[bot]") and bots("Coveralls") and bots("my-jenkins-runner") and bots("acme-ci")
    assert bots("k8s-robot") is True  # ends in "bot"
    assert bots("renovate", "Bot")  # GitHub marks App accounts "type": "Bot"
    assert not bots("jane-doe") and not bots("cinema") and not bots(None)
