"""The form's few-step line: when a LoRA in the job is a few-step distillation (LCM-LoRA, TCD, Hyper-SD, PCM, or
one the user marked), say what settings it needs and apply them with F6. Mixed into JobForm."""

from __future__ import annotations

from collections.abc import Callable

from textual.css.query import NoMatches
from textual.widgets import Input, Select, Static

from picotui.engine.models.few_step import FewStep, profile_from_text
from picotui.ui.text import plain, shorten


class FewStepHint:
    # LoRA file name -> its profile; the app replaces it with one that reads headers and the user's marks
    few_step_lookup: Callable[[str], FewStep | None] = staticmethod(lambda name: profile_from_text(name, "name"))

    def few_step_in_job(self) -> tuple[str, FewStep] | None:
        from picotui.ui.widgets.lora_rows import LoraPanel

        for row in self.query_one(LoraPanel).rows():
            try:
                name, _weight = row.spec
            except NoMatches:  # a row still being mounted: the refresh after it counts it
                continue
            found = self.few_step_lookup(name) if name else None
            if found is not None:
                return name, found
        return None

    def refresh_few_step(self) -> None:
        hint = self.query_one("#few-step-hint", Static)
        job = self.few_step_in_job()
        if job is None:
            hint.update("")
            hint.display = False
            return
        name, found = job
        try:
            steps = int(self.query_one("#steps", Input).value)
            cfg = float(self.query_one("#cfg", Input).value)
        except ValueError:
            steps, cfg = 0, 0.0
        sampler = str(self.query_one("#sampler", Select).value)
        what = f"{shorten(name, 40)} is a {found.kind} LoRA: {found.settings_text()}"
        hint.update(plain(what + (" · the settings fit" if found.fits(steps, cfg, sampler) else " · F6 applies"),
                          one_line=True))
        hint.display = True

    def action_apply_few_step(self) -> None:
        job = self.few_step_in_job()
        if job is None:
            self.app.notify("No few-step LoRA in the job: add one (LCM-LoRA, TCD, Hyper-SD...), or mark a LoRA "
                            "as few-step in the model browser (ctrl+o, then f).", timeout=5)
            return
        name, found = job
        self.query_one("#steps", Input).value = str(found.best_steps)
        self.query_one("#cfg", Input).value = f"{found.cfg[0]:g}"
        self.query_one("#sampler", Select).value = found.sampler
        self.refresh_few_step()
        self.app.notify(f"{found.kind} settings applied for {shorten(name, 40)}: {found.best_steps} steps, "
                        f"CFG {found.cfg[0]:g}, {found.sampler}.", timeout=4)


def few_step_marks(app):
    """The app's FewStepMarks (the user's marks in the state folder), read once per session."""
    from picotui.engine.models.few_step import FewStepMarks

    marks = getattr(app, "_few_step_marks", None)
    if marks is None:
        marks = app._few_step_marks = FewStepMarks(app.paths.state)
        if marks.problem:
            app.notify(marks.problem, severity="warning", timeout=8)
    return marks


def few_step_loras(app) -> dict[str, FewStep]:
    """Usable LoRA file name -> profile, for every few-step LoRA in the library (headers read once per scan)."""
    marks = few_step_marks(app)
    found = {}
    for mf in getattr(app, "model_files", []):
        if mf.kind == "lora" and mf.usable:
            profile = marks.profile(mf.name, mf.path)
            if profile is not None:
                found[mf.name] = profile
    return found


def refresh_form_few_step(app) -> None:
    """After a scan or a mark: the form's lookup knows the library's few-step LoRAs (and names it lacks)."""
    known = few_step_loras(app)
    app.few_step_known = known
    marks = few_step_marks(app)
    form = app.main.form
    form.few_step_lookup = lambda name: known.get(name) or marks.profile(name)
    form.refresh_few_step()
