import { SECTOR_SIZE } from './upper-spec.js';

/** Start of the sector holding byte x. */
export function sectorFloor(x: number): number {
  return x - (x % SECTOR_SIZE);
}

/** First sector boundary at or after x. */
export function sectorCeil(x: number): number {
  return Math.ceil(x / SECTOR_SIZE) * SECTOR_SIZE;
}
