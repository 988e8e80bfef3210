"""The Activity page's sentences: each audit event written for people, with links.

Group names come through `access.shown_group_name`, so a member restricted to groups reads only
their own groups' names.
"""

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from console import access


def _devices(count: int) -> str:
    return f"{count:,} device{'' if count == 1 else 's'}"


class Sentences:
    """Writes the events of one product for one member; builds each kind of link once."""

    def __init__(self, membership):
        self.membership = membership
        slug = membership.product.slug
        self.devices_url = reverse("devices:list", kwargs={"product": slug})
        self.firmware_url = reverse("firmware:list", kwargs={"product": slug})
        self.groups_url = reverse("groups:list", kwargs={"product": slug})

    def _groups(self, names) -> SafeString:
        shown = [access.shown_group_name(self.membership, name) for name in names or ()]
        return format_html_join(", ", "<strong>{}</strong>", ((name,) for name in shown)) if shown else format_html("no group")

    def _version(self, version) -> SafeString:
        return format_html('<a href="{}">v{}</a>', self.firmware_url, version) if version else format_html("none")

    def describe(self, event) -> SafeString:
        details = event.details or {}
        action, obj = event.action, event.object_repr
        count = _devices(event.device_count)
        if action == "device.groups":
            parts = []
            if details.get("added"):
                parts.append(format_html("added {} to {}", count, self._groups(details["added"])))
            if details.get("removed"):
                parts.append(format_html("removed {} from {}", count if not parts else "them", self._groups(details["removed"])))
            return format_html("{}", SafeString(" and ".join(parts))) if parts else format_html("changed the groups of {}", count)
        if action == "device.groups_import":
            return format_html("imported group memberships from a CSV file, changing {}", count)
        if action == "device.groups_undo":
            return format_html("undid a group edit, changing {} back", count)
        if action == "group.create":
            return format_html("created group {}", self._groups([obj]))
        if action == "group.edit":
            renamed = (details.get("before") or {}).get("name")
            if renamed:
                return format_html("renamed group {} to {}", self._groups([renamed]), self._groups([obj]))
            return format_html("edited group {}", self._groups([obj]))
        if action == "group.delete":
            return format_html("deleted group {}; {} left it", self._groups([obj]), count)
        if action == "firmware.upload":
            return format_html("uploaded {}", self._version(details.get("version")))
        if action == "firmware.edit":
            return format_html("edited {}", obj)
        if action == "firmware.delete":
            return format_html("deleted v{}", details.get("version"))
        if action == "firmware.release":
            return self._release(details)
        if action.startswith("rollout."):
            return self._rollout(action, details)
        if action in ("device.lock", "device.unlock"):
            verb = f"locked {obj} to v{details.get('locked_after')}" if action == "device.lock" else f"unlocked {obj}"
            return format_html("{}", verb)
        if action in ("device.development_mark", "device.development_unmark"):
            verb = "marked {} as a development device" if action == "device.development_mark" else "unmarked {} as a development device"
            return format_html(verb, obj)
        if action == "device.import":
            return format_html("imported {}", count)
        if action == "device.remove":
            return format_html("removed device {} from the product", obj or details.get("device_id", ""))
        if action.startswith("firmware.update_"):
            outcome = {"targeted": "was targeted for", "succeeded": "updated to", "failed": "did not install",
                       "superseded": "stopped waiting for"}.get(action.removeprefix("firmware.update_"), action)
            return format_html("{} {} v{}", obj, outcome, details.get("to_version"))
        if action.startswith("team."):
            return format_html("{} {}", {"team.invite": "invited", "team.role": "changed the role of",
                                         "team.restrict": "changed the groups of", "team.remove": "removed"}.get(action, action),
                               details.get("user") or obj)
        if action.startswith("webhook."):
            return format_html("{} {}", {"webhook.create": "added the webhook", "webhook.delete": "deleted the webhook",
                                         "webhook.test": "sent a test event to the webhook"}.get(action, action),
                               details.get("url") or obj)
        return format_html("{} {}", action.replace(".", " ").replace("_", " "), obj)

    def _rollout_link(self, details) -> SafeString:
        name = f"v{details.get('version')} rollout"
        if not details.get("rollout"):
            return format_html("the {}", name)
        url = reverse("firmware:rollout", kwargs={"product": self.membership.product.slug, "rollout_id": details["rollout"]})
        return format_html('the <a href="{}">{}</a>', url, name)

    def _stage_label(self, label) -> str:
        """A stage's label ("10%" or group names), with names a restricted member may not read hidden."""
        parts = [part.strip() for part in str(label or "").split(",") if part.strip()]
        return ", ".join(part if part.endswith("%") else access.shown_group_name(self.membership, part) for part in parts)

    def _stages(self, summary) -> str:
        return " → ".join(self._stage_label(part) for part in str(summary or "").split(" → ") if part)

    def _rollout(self, action, details) -> SafeString:
        rollout = self._rollout_link(details)
        number = lambda key: f"{details.get(key) or 0:,}"  # noqa: E731
        if action == "rollout.scheduled":
            return format_html("scheduled {} ({}) to start at {}", rollout, self._stages(details.get("stages")),
                               str(details.get("starts_at", ""))[:16].replace("T", " "))
        if action == "rollout.started":
            return format_html("started {} ({}): {} targeted", rollout, self._stages(details.get("stages")),
                               _devices(details.get("targeted") or 0))
        if action == "rollout.stage_opened":
            return format_html("opened stage {} of {} ({}) of {}: {}", details.get("stage"), details.get("stages"),
                               self._stage_label(details.get("opens")), rollout, _devices(details.get("targeted") or 0))
        if action == "rollout.paused":
            return format_html("paused {}", rollout)
        if action == "rollout.resumed":
            acknowledged = details.get("acknowledged") or 0
            if acknowledged:
                return format_html("resumed {}, acknowledging {} failure{}", rollout, number("acknowledged"),
                                   "" if acknowledged == 1 else "s")
            return format_html("resumed {}", rollout)
        if action == "rollout.advanced":
            return format_html("advanced {} past stage {} without waiting for its gate", rollout, details.get("stage"))
        if action == "rollout.halted":
            return format_html("halted {}: {}", rollout, details.get("reason", ""))
        if action == "rollout.completed":
            return format_html("completed {}: {} updated, {} failed", rollout, number("updated"), number("failed"))
        if action == "rollout.aborted":
            return format_html("aborted {}: {} went back to their previous target", rollout, _devices(details.get("returned") or 0))
        if action == "rollout.rolled_back":
            return format_html("rolled back {}: {} targeted back to the version they ran before", rollout,
                               _devices(details.get("devices") or 0))
        return format_html("{} {}", action.replace(".", " ").replace("_", " "), rollout)

    def _release(self, details) -> SafeString:
        version = self._version(details.get("version"))
        before, after = set(details.get("groups_before") or ()), set(details.get("groups_after") or ())
        parts = []
        if after - before:
            parts.append(format_html("released {} to {}", version, self._groups(sorted(after - before))))
        if before - after:
            parts.append(format_html("unreleased {} from {}", version, self._groups(sorted(before - after))))
        if details.get("product_default_after") != details.get("product_default_before"):
            made = "made {} the product default" if details.get("product_default_after") else "removed {} as product default"
            parts.append(format_html(made, version))
        sentence = SafeString(" and ".join(parts)) if parts else format_html("released {} again, unchanged", version)
        impacted = details.get("impacted")
        if impacted and (after - before or details.get("product_default_after")):
            return format_html("{}: {} will be updated", sentence, _devices(impacted))
        return sentence
