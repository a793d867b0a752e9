"""Local authorities: which are simulated, their published volumes, and their indices.

The calibration table `calibration/la_inputs_2024.csv` (built by
`caresim.population.build_inputs` from DfE tables) holds one row per LA. From it this
module derives LA *indices*: an LA's published ratio divided by England's, used by the
scenario's `local_variation` to vary hazards and durations between LAs:

- `cpp_index`: (CPP starts / referrals) of the LA over England's
- `care_entry_index`: (non-UASC CLA starts / referrals) over England's
- `cla_duration_index`: (CLA at 31 March / CLA ceased), Little's law mean stay, over England's
- `cin_duration_index`: (CIN at 31 March / CIN episodes started) over England's
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from caresim.errors import CaresimError
from caresim.scenario.model import LA_INDICES as INDICES
from caresim.scenario.model import Geography


def _ratio_index(la: pd.DataFrame, nat: pd.Series, num: pd.Series, den: pd.Series,
                 nat_num: float, nat_den: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (num / den) / (nat_num / nat_den)
    return np.nan_to_num(r.to_numpy(dtype=float), nan=1.0, posinf=1.0, neginf=1.0)


@dataclass(frozen=True)
class LocalAuthorities:
    """The simulated LAs (rows of la_inputs restricted to the scenario's geography)."""

    table: pd.DataFrame  # one row per simulated LA, in a fixed order
    national: pd.Series  # the England row

    @classmethod
    def from_inputs(cls, la_inputs: pd.DataFrame, geography: Geography) -> "LocalAuthorities":
        """Select the LAs a scenario simulates and compute their indices."""
        las = la_inputs[la_inputs["level"] == "la"].copy()
        national = la_inputs[la_inputs["level"] == "national"].iloc[0]
        uasc = las["cla_starts_uasc"].fillna(0.0)
        nat_uasc = float(national["cla_starts_uasc"])
        las["cpp_index"] = _ratio_index(las, national, las["cpp_starts"], las["referrals"],
                                        national["cpp_starts"], national["referrals"])
        las["care_entry_index"] = _ratio_index(
            las, national, las["cla_starts"] - uasc, las["referrals"],
            national["cla_starts"] - nat_uasc, national["referrals"])
        las["cla_duration_index"] = _ratio_index(
            las, national, las["cla_at31"], las["cla_ceased"],
            national["cla_at31"], national["cla_ceased"])
        las["cin_duration_index"] = _ratio_index(
            las, national, las["cin_at31"], las["cin_started"],
            national["cin_at31"], national["cin_started"])
        if geography.las:
            unknown = sorted(set(geography.las) - set(las["geography"]))
            if unknown:
                raise CaresimError(f"geography.las: unknown LA code(s) {', '.join(unknown)}")
            las = las[las["geography"].isin(geography.las)]
        if geography.region:
            regions = sorted(las["region_name"].dropna().unique())
            if geography.region not in regions:
                raise CaresimError(
                    f"geography.region: unknown region {geography.region!r}; one of {', '.join(regions)}"
                )
            las = las[las["region_name"] == geography.region]
        las = las.sort_values("geography").reset_index(drop=True)
        return cls(table=las, national=national)

    @property
    def n(self) -> int:
        return len(self.table)

    @property
    def codes(self) -> list[str]:
        return list(self.table["geography"])

    @property
    def regions(self) -> pd.Series:
        """LA code -> region name."""
        return pd.Series(self.table["region_name"].to_numpy(), index=self.table["geography"])

    def column(self, name: str) -> np.ndarray:
        """A numeric column per LA, missing values as 0 (with the build's imputation done)."""
        if name not in self.table.columns:
            raise CaresimError(f"la_inputs has no column {name!r}")
        return np.nan_to_num(self.table[name].to_numpy(dtype=float), nan=0.0)

    def index(self, name: str, bounds: tuple[float, float]) -> np.ndarray:
        """An LA index (1 = England), clipped to `bounds`."""
        if name not in INDICES:
            raise CaresimError(f"unknown LA index {name!r}; one of {', '.join(INDICES)}")
        value = self.table[name].to_numpy(dtype=float)
        fitted = f"{name}_fit"  # a calibration's correction (data.la_multipliers)
        if fitted in self.table.columns:
            value = value * np.nan_to_num(self.table[fitted].to_numpy(dtype=float), nan=1.0)
        return np.clip(value, *bounds)

    def area_of(self, areas: str) -> tuple[np.ndarray, list[str]]:
        """Area index per LA and area names, for `national` or `region` capacity pools."""
        if areas == "national":
            return np.zeros(self.n, dtype=np.int32), ["England"]
        names = sorted(self.table["region_name"].fillna("Unknown").unique())
        lookup = {n: i for i, n in enumerate(names)}
        idx = np.array([lookup[r] for r in self.table["region_name"].fillna("Unknown")], dtype=np.int32)
        return idx, names
