/** moe-route policy: capacity-drop */
export {}
